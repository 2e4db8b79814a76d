"""A request trace like Parrotpark's own evaluation, for the on-demand simulator (bench/on_demand.py).

    .venv/bin/python bench/parrotpark_trace.py --seed 14 --out bench/traces/parrotpark-evaluation.csv

What is known of the evaluation (as issue 14 of this collection reports
it): 9 working days of a small team chatting with a model on an L4, 329,503
prompt and 103,083 completion tokens (432,586 in all), the GPU up 10 h a
working day. What is not known, and is assumed here:

- Days: the 9 working days from Monday 17 March 2025 (17-21 and 24-27
  March, before the change to summer time), Europe/Paris.
- Users: 4, of unequal activity: on average 4, 3, 2.5 and 1.5 conversations
  a working day (a Poisson number per user and day), about 11 a day in all.
- A conversation is a burst of turns: 1 + a geometric number of follow-ups
  (3.7 turns on average), the next turn 40 s to 4 min after the previous
  answer (reading and typing).
- When: a conversation starts in the morning (09:00-12:00, 55 %) or the
  afternoon (13:30-17:30), uniformly; every request falls between 08:30 and
  17:30 (a turn that would be later is dropped), so the trace leaves the first
  and last half hour of a 08:00-18:00 window free.
- Tokens: the prompt carries the conversation so far (a system prompt of
  about 150 tokens, each earlier question and answer, the new question of 20
  to 120 tokens); an answer is log-normal around 250 tokens. The raw numbers
  are then scaled so that the totals are exactly 329,503 prompt and 103,083
  completion tokens (largest remainders; every request keeps at least one
  token of each).

With seed 14 (the committed bench/traces/parrotpark-evaluation.csv) this
gives 422 requests, 20 to 80 a day (47 on average), 1,025 tokens each on
average. The same seed always gives the same file.
CSV columns: timestamp (ISO 8601 with offset, to the second), user,
prompt_tokens, completion_tokens; one row per request, in time order.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Europe/Paris")
START = date(2025, 3, 17)  # a Monday
WORKING_DAYS = 9
PROMPT_TOKENS = 329_503
COMPLETION_TOKENS = 103_083
USERS = {"alice": 4.0, "bruno": 3.0, "chloe": 2.5, "dmitri": 1.5}  # conversations per working day
FOLLOW_UP = 0.73  # probability of one more turn: 1 / (1 - 0.73) = 3.7 turns on average
FIRST, LAST = time(8, 30), time(17, 30)
HEADER = ("timestamp", "user", "prompt_tokens", "completion_tokens")


@dataclass
class Row:
    at: datetime
    user: str
    prompt: float
    completion: float


def working_days(start: date, count: int) -> list[date]:
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _conversation(rng: random.Random, day: date, user: str) -> list[Row]:
    if rng.random() < 0.55:
        start = datetime.combine(day, time(9, 0), tzinfo=ZONE) + timedelta(seconds=rng.uniform(0, 3 * 3600))
    else:
        start = datetime.combine(day, time(13, 30), tzinfo=ZONE) + timedelta(seconds=rng.uniform(0, 4 * 3600))
    last = datetime.combine(day, LAST, tzinfo=ZONE)
    rows: list[Row] = []
    context = rng.uniform(120, 180)  # the system prompt
    at = start
    while at <= last:
        question = rng.uniform(20, 120)
        answer = rng.lognormvariate(math.log(250), 0.5)
        rows.append(Row(at.replace(microsecond=0), user, context + question, answer))
        context += question + answer
        if rng.random() > FOLLOW_UP:
            break
        at += timedelta(seconds=answer / 25 + rng.uniform(40, 240))  # the answer's time, then reading and typing
    return rows


def _scale(values: list[float], total: int) -> list[int]:
    """Integers proportional to ``values``, each at least 1, summing to ``total`` (largest remainders)."""
    raw_total = sum(values)
    shares = [max(1.0, value * total / raw_total) for value in values]
    floors = [math.floor(share) for share in shares]
    left = total - sum(floors)
    order = sorted(range(len(values)), key=lambda i: (floors[i] - shares[i], i))
    step = 1 if left >= 0 else -1
    i = 0
    while left != 0:
        index = order[i % len(order)]
        if step > 0 or floors[index] > 1:
            floors[index] += step
            left -= step
        i += 1
    return floors


def generate(seed: int) -> list[tuple[str, str, int, int]]:
    rng = random.Random(seed)
    rows: list[Row] = []
    for day in working_days(START, WORKING_DAYS):
        for user, mean in USERS.items():
            for _conversation_number in range(_poisson(rng, mean)):
                rows.extend(_conversation(rng, day, user))
    rows.sort(key=lambda row: (row.at, row.user))
    prompts = _scale([row.prompt for row in rows], PROMPT_TOKENS)
    completions = _scale([row.completion for row in rows], COMPLETION_TOKENS)
    return [
        (row.at.isoformat(timespec="seconds"), row.user, prompt, completion)
        for row, prompt, completion in zip(rows, prompts, completions, strict=True)
    ]


def write(rows: list[tuple[str, str, int, int]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--seed", type=int, required=True, help="random seed (the committed trace: 14)")
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    args = parser.parse_args(argv)
    rows = generate(args.seed)
    try:
        write(rows, args.out)
    except OSError as exc:
        parser.error(f"--out {args.out}: {exc}")
    days = len({row[0][:10] for row in rows})
    prompt = sum(row[2] for row in rows)
    completion = sum(row[3] for row in rows)
    print(
        f"{args.out}: {len(rows)} requests from {len({row[1] for row in rows})} users on {days} days, "
        f"{prompt:,} prompt + {completion:,} completion = {prompt + completion:,} tokens",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
