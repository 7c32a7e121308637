"""The same outage with the async clients: ``chaos.run`` runs the test's coroutine on virtual time."""

from support_bot.llm import make_resilient

OPENAI_DOWN = {
    "openai/gpt-4o": {"outages": [{"start": 0, "end": 600, "status": "503"}]},
    "azure/gpt-4o": {"latency": 0.8},
}


def test_an_openai_outage_with_async_clients(chaos):
    fake = chaos.providers(OPENAI_DOWN)

    async def ask(question):
        response = await fake.async_openai.chat.completions.create(
            model="notdiamond", messages=[{"role": "user", "content": question}]
        )
        return response.choices[0].message.content

    async def ten_minutes_of_questions():
        # the application's init call, here with its async clients
        with make_resilient(fake.async_openai, fake.async_azure):
            while chaos.now() < 600:
                await chaos.acall(ask, "Where is my parcel?")
                chaos.sleep(5)

    chaos.run(ten_minutes_of_questions())

    chaos.trace.assert_all_succeeded()
    chaos.trace.assert_requests_at_most("openai/gpt-4o", 10)
    chaos.trace.assert_no_call_longer_than(1.5)
