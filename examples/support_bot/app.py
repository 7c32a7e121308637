"""The application's own code: it calls the SDK as it always did."""

from __future__ import annotations

from openai import AzureOpenAI, OpenAI


def answer(client: OpenAI | AzureOpenAI, question: str) -> str:
    """Answer one support question; notdiamond picks the model and survives provider trouble."""
    response = client.chat.completions.create(
        model="notdiamond",
        messages=[
            {"role": "system", "content": "You answer support questions briefly."},
            {"role": "user", "content": question},
        ],
    )
    return response.choices[0].message.content or ""
