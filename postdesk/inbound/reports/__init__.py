"""Delivery reports in inbound mail: bounces, complaints and automatic replies are not customer mail.

``detect_report(msg)`` recognises and parses them into a :class:`Report` ``{type, recipients: [{address, status,
action, permanent}], ...}``:

* ``bounce`` - RFC 3464 DSNs and the non-standard bounce texts of Postfix, Exim, Sendmail, qmail, Exchange /
  Office 365, Gmail, Yahoo, Amazon SES (also its JSON notifications), mail.ru, ... in any language. Delay warnings
  are bounces with ``action='delayed'``; success notifications are bounces with ``action='delivered'``, and
  neither is ``permanent``. Permanence is per recipient, from the status class (5.x.x permanent, 4.x.x
  temporary), else the SMTP reply code, else the wording.
* ``complaint`` - ARF feedback reports (RFC 5965), Hotmail JMRP forwards, SES complaint notifications;
  ``feedback_type`` says which kind (abuse, fraud, auth-failure, ...).
* ``autoreply`` - RFC 3834 ``Auto-Submitted: auto-replied``, ``X-Autoreply``/``X-Autorespond``,
  ``Precedence: auto_reply``, out-of-office subjects; the recipient is the replying address.

``original_message_id`` and ``original_headers`` (message-id, from, to, subject, return-path, x-postdesk-id) come
from the returned original, so that the caller can match the report to the email we sent.

``correlation_keys(report, msg)`` lists what to look the email we sent up by (X-Postdesk-Id, Message-IDs, VERP
addresses). ``is_auto_submitted(msg)`` answers the broader loop-guard question: did a machine send this on its own?
"""

from .autoreply import is_auto_submitted
from .detect import detect_report
from .matching import correlation_keys
from .model import Report, ReportRecipient

__all__ = ["Report", "ReportRecipient", "correlation_keys", "detect_report", "is_auto_submitted"]
