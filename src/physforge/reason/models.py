"""Answerers the evaluation harness scores: every one maps questions to answer strings.

- ``EncoderAnswerer``: a PhysEncoder checkpoint folder;
- ``TransformersAnswerer``: a local transformers VLM folder (full model, or a peft LoRA adapter
  whose ``base_model_name_or_path`` is a local folder), greedy decoding; ``blind=True`` sends no
  images;
- ``EndpointAnswerer``: any OpenAI-compatible chat-completions endpoint, images as base64 PNG
  data URLs; bounded by a timeout per request, a retry count and a question cap;
- ``PredictionsAnswerer``: a JSONL file of ``{"question_id", "prediction"}`` lines;
- ``MajorityAnswerer``: the most frequent training answer per template (median for numbers).

Nothing here reaches the network except ``EndpointAnswerer`` at the URL it is given.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from physforge.reason.data import Split
from physforge.reason.errors import CheckpointError, EndpointError, ReasonConfigError


class Answerer(Protocol):
    name: str
    kind: str

    def answer(self, split: Split, questions: list[dict[str, Any]]) -> list[str]: ...


def prompt_for(question: dict[str, Any], fps: float) -> str:
    """The user text of a question, exactly as in the data engine's TRL/LLaVA exports."""
    from physforge.data.export import prompt_text

    return prompt_text(question, fps)


class EncoderAnswerer:
    kind = "physforge"

    def __init__(self, path: str | Path, name: str | None = None, batch_size: int = 64):
        from physforge.reason.encoder import load_encoder

        self.path = Path(path)
        self.model = load_encoder(self.path)
        self.name = name or f"physencoder:{self.path.parent.name}/{self.path.name}"
        self.batch_size = batch_size

    def answer(self, split: Split, questions: list[dict[str, Any]]) -> list[str]:
        return self.model.answer(split, questions, batch_size=self.batch_size)


class PredictionsAnswerer:
    kind = "predictions"

    def __init__(self, path: str | Path, name: str | None = None):
        from physforge.data.grade import read_predictions

        self.predictions = read_predictions(path)
        self.name = name or f"predictions:{Path(path).name}"

    def answer(self, split: Split, questions: list[dict[str, Any]]) -> list[str | None]:
        return [self.predictions.get(q["question_id"]) for q in questions]


class MajorityAnswerer:
    """The prior: per template, the most frequent training answer (median for numbers; ties to
    the smallest answer string, so the result does not depend on question order)."""

    kind = "baseline"
    name = "majority"

    def __init__(self, train_questions: list[dict[str, Any]]):
        answers: dict[str, list[str]] = defaultdict(list)
        kinds: dict[str, str] = {}
        for q in train_questions:
            answers[q["template"]].append(q["answer"])
            kinds[q["template"]] = q["answer_type"]
        self.table: dict[str, str] = {}
        for template, values in answers.items():
            if kinds[template] == "number":
                self.table[template] = f"{float(np.median([float(v) for v in values])):.3f}"
            else:
                counts = Counter(values)
                best = max(counts.values())
                self.table[template] = min(v for v, c in counts.items() if c == best)
        by_type: dict[str, Counter] = defaultdict(Counter)
        for q in train_questions:
            by_type[q["answer_type"]][q["answer"]] += 1
        self.fallback = {t: c.most_common(1)[0][0] for t, c in by_type.items()}

    def answer(self, split: Split, questions: list[dict[str, Any]]) -> list[str]:
        defaults = {"bool": "yes", "count": "0", "number": "0.0", "name": "red", "choice": "A", "multi": "none"}
        return [self.table.get(q["template"], self.fallback.get(q["answer_type"], defaults[q["answer_type"]]))
                for q in questions]


class TransformersAnswerer:
    """A local transformers image-text-to-text model (no hub access: ``local_files_only``)."""

    kind = "transformers"

    def __init__(self, path: str | Path, name: str | None = None, blind: bool = False, max_new_tokens: int = 8,
                 batch_size: int = 8):
        self.path = Path(path)
        if not (self.path / "config.json").is_file() and not (self.path / "adapter_config.json").is_file():
            raise CheckpointError(self.path, "not a transformers model folder (no config.json or adapter_config.json)")
        self.model, self.processor = load_transformers_vlm(self.path)
        self.blind = blind
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.name = name or f"transformers:{self.path.name}" + (" (blind)" if blind else "")

    def answer(self, split: Split, questions: list[dict[str, Any]]) -> list[str]:
        import torch
        from PIL import Image

        out = []
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"
        for start in range(0, len(questions), self.batch_size):
            chunk = questions[start: start + self.batch_size]
            texts, images = [], []
            for q in chunk:
                fps = split.scenes[q["scene_id"]].fps
                frames = [] if self.blind else [Image.fromarray(a) for a in split.images(q)]
                content = [{"type": "image"} for _ in frames] + [{"type": "text", "text": prompt_for(q, fps)}]
                texts.append(self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                                add_generation_prompt=True, tokenize=False))
                images.append(frames)
            kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
            if not self.blind:
                kwargs["images"] = images
            inputs = self.processor(**kwargs)
            with torch.no_grad():
                generated = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                                pad_token_id=tokenizer.pad_token_id)
            new = generated[:, inputs["input_ids"].shape[1]:]
            out.extend(t.strip() for t in self.processor.batch_decode(new, skip_special_tokens=True))
        return out


def load_transformers_vlm(path: Path):
    """(model in eval mode, processor) from a local folder; a peft adapter folder is applied on
    its local base model (``physforge.vlm.load_vlm``)."""
    from physforge.vlm import load_vlm

    return load_vlm(path, error=CheckpointError)


class EndpointAnswerer:
    """An OpenAI-compatible ``POST {url}/chat/completions`` endpoint.

    timeout_s: seconds per request; retries: extra attempts after a failed request (with a
    short back-off); api_key_env: name of an environment variable holding a bearer token
    (the key itself is never stored in results). max_tokens: answer length cap.
    """

    kind = "endpoint"

    def __init__(self, url: str, model: str, name: str | None = None, blind: bool = False, timeout_s: float = 60.0,
                 retries: int = 2, api_key_env: str | None = None, max_tokens: int = 16):
        if not url.startswith(("http://", "https://")):
            raise ReasonConfigError("endpoint_url", f"expected an http(s) URL such as http://127.0.0.1:8000/v1, got "
                                    f"{url!r}")
        if not model:
            raise ReasonConfigError("endpoint_model", "name the model the endpoint should run")
        self.url = url.rstrip("/") + "/chat/completions"
        self.model, self.blind, self.max_tokens = model, blind, max_tokens
        self.timeout_s, self.retries = timeout_s, retries
        self.api_key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not self.api_key:
            raise ReasonConfigError("api_key_env", f"environment variable {api_key_env} is not set")
        self.name = name or f"endpoint:{model}" + (" (blind)" if blind else "")
        self.requests = 0

    def request_body(self, question: dict[str, Any], split: Split) -> dict[str, Any]:
        fps = split.scenes[question["scene_id"]].fps
        content: list[dict[str, Any]] = []
        if not self.blind:
            for data in split.png(question):
                content.append({"type": "image_url",
                                "image_url": {"url": "data:image/png;base64," + base64.b64encode(data).decode()}})
        content.append({"type": "text", "text": prompt_for(question, fps)})
        return {"model": self.model, "messages": [{"role": "user", "content": content}], "temperature": 0,
                "max_tokens": self.max_tokens}

    def _post(self, body: dict[str, Any]) -> str:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = None
        for attempt in range(self.retries + 1):
            self.requests += 1
            try:
                request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    reply = json.loads(response.read())
                return str(reply["choices"][0]["message"]["content"] or "")
            except urllib.error.HTTPError as err:
                last = f"HTTP {err.code} {err.reason}"
                if err.code < 500 and err.code != 429:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                last = f"no answer ({getattr(err, 'reason', err)})"
            except (json.JSONDecodeError, KeyError, IndexError, TypeError) as err:
                last = f"reply is not a chat completion ({type(err).__name__}: {err})"
                break
            time.sleep(min(0.5 * 2 ** attempt, 4.0))
        raise EndpointError(f"{self.url}: {last}; check the URL (it should end before /chat/completions, e.g. "
                            "http://host:port/v1), the model name and that the server is up")

    def answer(self, split: Split, questions: list[dict[str, Any]]) -> list[str]:
        return [self._post(self.request_body(q, split)) for q in questions]
