"""Turning the stored tables into messages and posting them: one message per alert and kind with something
to say. Posting never raises: a failure is logged with the alert's name and counted."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from pipeline.alerts import items as pick
from pipeline.alerts.messages import payload
from pipeline.alerts.post import AlertPostError, Webhook, secret_from_env
from pipeline.alerts.rules import AlertContext
from pipeline.settings import AlertSettings

log = logging.getLogger(__name__)

#: Kinds whose items are tickets: what was posted is remembered in ``alerts_sent``.
TICKET_KINDS = ("breached", "due_soon")


@dataclass(frozen=True)
class AlertData:
    """What the alerts read: the facts, what each alert already posted, the month's scorecard, the run."""

    facts: pd.DataFrame
    posted: pd.DataFrame  # alerts_sent rows: alert, kind, source, ticket_id, metric
    scorecard_kpi: pd.DataFrame
    scorecard: pd.DataFrame
    run: dict | None = None  # run_failed: {"run_id", "status", "reason"}
    roster: pd.DataFrame = field(default_factory=pd.DataFrame)  # the month's (engineer, team, client) of tickets


@dataclass(frozen=True)
class Message:
    """One post: which alert, which kind, its items and the body in the alert's format."""

    alert: str
    kind: str
    items: list[dict]
    body: dict


@dataclass
class Outcome:
    """What a round of alerts did."""

    sent: int = 0
    failed: int = 0
    posted_items: list[dict] = field(default_factory=list)  # alerts_sent rows (without run and time)


def messages(rules: list[AlertSettings], data: AlertData, context: AlertContext, as_of: pd.Timestamp) -> list[Message]:
    """Every message the rules have to post now, in config order."""
    out = []
    for rule in rules:
        for kind in rule.on:
            found = _items(rule, kind, data, as_of)
            if found:
                body = payload(rule.format, rule.name, kind, found, context, rule.due_within_s)
                out.append(Message(rule.name, kind, found, body))
    return out


def _items(rule: AlertSettings, kind: str, data: AlertData, as_of: pd.Timestamp) -> list[dict]:
    if kind == "run_failed":
        return [data.run] if data.run else []
    if kind == "below_target":
        scoped = rule.team or rule.client
        engineers = set(pick.for_rule(data.roster, rule)["engineer"]) if scoped else None
        return pick.below_target_items(data.scorecard_kpi, data.scorecard, engineers)
    facts = pick.for_rule(data.facts, rule)
    if kind == "breached":
        posted = data.posted[(data.posted["alert"] == rule.name) & (data.posted["kind"] == "breached")]
        return pick.breached_items(facts, posted)
    return pick.due_soon_items(facts, as_of, rule.due_within_s)


def needs_roster(rules: list[AlertSettings]) -> bool:
    """Whether a rule's ``below_target`` is scoped to teams or clients (``AlertData.roster``)."""
    return any("below_target" in rule.on and (rule.team or rule.client) for rule in rules)


def enabled(rules: list[AlertSettings], env: Mapping[str, str]) -> list[AlertSettings]:
    """The rules whose webhook URL is set; each other one is disabled with a warning (a missing chat secret
    never stops the KPIs)."""
    out = []
    for rule in rules:
        if secret_from_env(rule.url_env, env):
            out.append(rule)
        else:
            log.warning("alert %s is disabled: the environment variable %s (or %s_FILE) is not set",
                        rule.name, rule.url_env, rule.url_env)
    return out


def deliver(rules: list[AlertSettings], to_post: list[Message], env: Mapping[str, str],
            webhook: Callable[..., Webhook] = Webhook) -> Outcome:
    """Post every message of the rules whose URL is set (``enabled`` warns of the others); count and remember
    what went through."""
    outcome = Outcome()
    urls = {rule.name: secret_from_env(rule.url_env, env) for rule in rules}
    hooks = {rule.name: webhook(rule.name, urls[rule.name], signing_secret=secret_from_env(rule.secret_env, env))
             for rule in rules if urls[rule.name]}
    for message in to_post:
        hook = hooks.get(message.alert)
        if hook is None:
            continue
        try:
            hook.post(message.body)
        except AlertPostError as exc:
            outcome.failed += 1
            log.error("alert %s: posting %s failed: %s", message.alert, message.kind, exc)
            continue
        outcome.sent += 1
        log.info("alert %s: posted %s (%d item(s))", message.alert, message.kind, len(message.items))
        if message.kind in TICKET_KINDS:
            outcome.posted_items += [{"alert": message.alert, "kind": message.kind, "source": i["source"],
                                      "ticket_id": i["ticket_id"], "metric": i["metric"]} for i in message.items]
    return outcome
