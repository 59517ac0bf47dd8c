"""Fixtures of the reports tests: logged-in clients of the shared cast."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture
def supervisor_client(sam):
    client = Client()
    client.force_login(sam)
    return client


@pytest.fixture
def agent_client(alice):
    client = Client()
    client.force_login(alice)
    return client
