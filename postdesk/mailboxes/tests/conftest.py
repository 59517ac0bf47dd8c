"""The console's client fixtures (postdesk/projects/tests/conftest.py), shared with the email account tests."""

from postdesk.projects.tests.conftest import agent_api, agent_client, supervisor_api, supervisor_client  # noqa: F401
