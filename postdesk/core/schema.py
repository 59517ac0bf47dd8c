"""Field types shared by the API schemas."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator

from postdesk.core import clock

# An ISO 8601 moment, converted to UTC on the way in (naive values are UTC); one without a UTC equivalent is a 422
# naming the field, never a database error.
Moment = Annotated[dt.datetime, AfterValidator(clock.as_utc)]
