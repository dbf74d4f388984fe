"""A private OpenLDAP server for the tests: Debian's slapd on a free port, its files under a temp folder.

The directory is loaded offline with slapadd before slapd starts (mdb backend, suffix dc=gov,dc=test),
then slapd runs in the foreground (`-d 0`, so it never forks away from us) with its output in a log
file and no pipe held (PITFALLS: a daemon holding our stdout hangs the run). As root it simply runs as
root: every file is ours, the port is above 1024.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SUFFIX = "dc=gov,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
READER = f"cn=reader,{SUFFIX}"  # the service account of search-then-bind
READER_PASSWORD = "reader-secret"
SCHEMAS = ("core", "cosine", "inetorgperson")

CONF = """\
{includes}
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
directory {dir}/db
# passwords are for binding only; a person reads their own entry, the service account reads all
access to attrs=userPassword by anonymous auth by * none
access to * by self read by dn.exact="{reader}" read by * none
"""


@dataclass(frozen=True)
class Person:
    """A person of the directory: login name, password and the roster code it carries."""

    uid: str
    password: str
    employee_number: str | None
    cn: str


def ssha(password: str) -> str:
    """userPassword in OpenLDAP's salted SHA-1 form ({SSHA}), as slappasswd writes it."""
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def ldif(people: list[Person]) -> str:
    """The directory's entries: the suffix, ou=people with its people, and the service account."""
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: test\ndc: gov",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {READER}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n"
        f"userPassword: {ssha(READER_PASSWORD)}",
    ]
    for p in people:
        lines = [
            f"dn: uid={p.uid},{PEOPLE}",
            "objectClass: inetOrgPerson",
            f"uid: {p.uid}",
            f"cn:: {base64.b64encode(p.cn.encode()).decode()}",  # UTF-8 names go base64 in LDIF
            f"sn: {p.uid}",
            f"userPassword: {ssha(p.password)}",
        ]
        if p.employee_number:
            lines.append(f"employeeNumber: {p.employee_number}")
        entries.append("\n".join(lines))
    return "\n\n".join(entries) + "\n"


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Directory:
    """slapd serving `people` on ldap://127.0.0.1:PORT until `stop`."""

    def __init__(self, folder: Path, people: list[Person]):
        self.folder, self.people = folder, people
        self.url = ""
        self._proc: subprocess.Popen | None = None

    def start(self) -> str:
        """Write the config, load the entries, start slapd and wait until it answers; returns its URL."""
        path = os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin"  # sbin is not on every user's PATH
        slapd, slapadd = shutil.which("slapd", path=path), shutil.which("slapadd", path=path)
        if not slapd or not slapadd:
            raise RuntimeError("slapd is not installed: apt-get install slapd (tools/setup-system.sh does it)")
        (self.folder / "db").mkdir(parents=True)
        includes = "\n".join(f"include /etc/ldap/schema/{s}.schema" for s in SCHEMAS)
        conf = self.folder / "slapd.conf"
        conf.write_text(CONF.format(includes=includes, dir=self.folder, suffix=SUFFIX, reader=READER))
        data = self.folder / "data.ldif"
        data.write_text(ldif(self.people), encoding="utf-8")
        subprocess.run([slapadd, "-q", "-f", str(conf), "-l", str(data)], check=True, capture_output=True)
        port = free_port()
        self.url = f"ldap://127.0.0.1:{port}"
        log = open(self.folder / "slapd.log", "wb")  # the server's own handle stays open until it stops
        self._proc = subprocess.Popen(
            [slapd, "-d", "0", "-f", str(conf), "-h", self.url + "/"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"slapd stopped at once: {(self.folder / 'slapd.log').read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return self.url
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"slapd did not answer on {self.url} within 10 s")

    def stop(self) -> None:
        """Stop slapd (TERM, then KILL after 5 s)."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
