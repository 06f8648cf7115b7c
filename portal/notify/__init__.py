"""Notifications: an in-app inbox per person, copied by e-mail through a :class:`~.senders.Sender`.

:func:`services.notify` writes inbox rows (deduplicated per person by a key, so a job that runs twice never
notifies twice) and one outbox row per message; the outbox handler delivers the e-mail copy when the person
has an address. The rows themselves live in ``portal.models.selfcheck.Notification``.
"""
