"""The spine: intake, the workflow, dispatch, the working calendar, categories, case queries."""
