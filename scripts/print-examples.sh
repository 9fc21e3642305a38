#!/usr/bin/env bash
# Printed by `make run` before the server starts: how to ask it something.
host=${1:-127.0.0.1}; port=${2:-8000}
cat <<EOT

  ragd is starting on http://$host:$port (first start ingests the demo corpus; give it a minute).

  curl:
    curl -s http://$host:$port/v1/chat/completions -H 'content-type: application/json' \\
      -d '{"model": "ragd", "messages": [{"role": "user", "content": "What is reciprocal rank fusion?"}]}'

  openai (Python):
    from openai import OpenAI
    client = OpenAI(base_url="http://$host:$port/v1", api_key="none")
    stream = client.chat.completions.create(model="ragd", stream=True,
        messages=[{"role": "user", "content": "하이브리드 검색은 무엇인가요?"}])
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="")
        if getattr(chunk, "citations", None):
            print("\n", chunk.citations)

EOT
