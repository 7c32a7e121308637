"""The support bot's notdiamond setup under an OpenAI outage, tested with notdiamond's pytest plugin.

``chaos`` is the plugin's fixture (``pip install "notdiamond[chaos]"``; nothing to import): fake
OpenAI and Azure providers with the faults below, on virtual time, so ten minutes of outage take
milliseconds, and a trace of every call for the assertions.
"""

from support_bot.app import answer
from support_bot.llm import make_resilient

#: OpenAI answers 503 for ten minutes; Azure answers every request in 0.8 s.
OPENAI_DOWN = {
    "openai/gpt-4o": {"outages": [{"start": 0, "end": 600, "status": "503"}]},
    "azure/gpt-4o": {"latency": 0.8},
}


def test_an_openai_outage_costs_users_little(chaos):
    fake = chaos.providers(OPENAI_DOWN)
    with make_resilient(fake.openai, fake.azure):  # the application's own init call
        while chaos.now() < 600:  # ten minutes of questions, 5 s after each answer
            chaos.call(answer, fake.openai, "Where is my parcel?")
            chaos.sleep(5)

    chaos.trace.assert_all_succeeded()  # Azure answered every question
    # The circuit breaker stops sending to the dead primary (without it: about 140 requests,
    # two for each question drawn to OpenAI).
    chaos.trace.assert_requests_at_most("openai/gpt-4o", 10)
    # One 0.5 s backoff at most, then Azure's 0.8 s (virtual seconds).
    chaos.trace.assert_no_call_longer_than(1.5)
