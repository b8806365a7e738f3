"""SMS through Twilio: segment counting, the Messages API transport, keyword subscriptions."""
