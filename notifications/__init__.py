"""Outgoing messages: the outbox (written in the action's transaction), its dispatcher, the
providers (Twilio SMS, SMTP e-mail, the local outbox) and message templates.

Nothing here knows Flask.
"""
