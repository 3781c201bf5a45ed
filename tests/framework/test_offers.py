"""The offer pool: hold bound, declines with refuse filters, SUPPRESS and REVIVE."""

from __future__ import annotations

from typing import Any

import pytest

from controller.mesos.offers import HeldOffer, OfferPool
from controller.mesos.tasks import AppVersion, ExecutorId

pytestmark = pytest.mark.unit


def mesos_offer(
    offer_id: str, agent: str, cpus: float = 4, mem: float = 1024, executors: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "id": {"value": offer_id},
        "framework_id": {"value": "fw"},
        "agent_id": {"value": agent},
        "hostname": f"host-{agent}",
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "role": "*"},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 9}]}},
        ],
        "executor_ids": [{"value": e} for e in executors],
    }


def pool() -> OfferPool:
    return OfferPool(hold_seconds=10, busy_refuse_seconds=5, idle_refuse_seconds=120)


def test_offer_is_read_from_mesos_json() -> None:
    offer = HeldOffer.from_mesos(
        mesos_offer("o1", "a1", executors=("ns.app@-@a1", "not-ours")), now=3.0
    )
    assert (offer.offer_id, offer.agent_id, offer.hostname) == ("o1", "a1", "host-a1")
    assert (offer.cpus, offer.mem) == (4.0, 1024.0)
    assert offer.executors == frozenset({ExecutorId("ns.app", "a1", None)})
    assert offer.received == 3.0


def test_offers_of_one_agent_are_merged_and_taken_together() -> None:
    p = pool()
    p.add(HeldOffer.from_mesos(mesos_offer("o1", "a1", cpus=1, mem=100), 0))
    p.add(HeldOffer.from_mesos(mesos_offer("o2", "a1", cpus=2, mem=200), 0))
    p.add(HeldOffer.from_mesos(mesos_offer("o3", "a2"), 0))
    version = AppVersion("ns.app", "0123456789ab")
    agents = {a.agent_id: a for a in p.agents(running_executors={"a2": [version]})}
    assert (agents["a1"].cpus, agents["a1"].mem) == (3.0, 300.0)
    assert agents["a2"].executors == frozenset({version})
    assert [o.offer_id for o in p.take(["o2", "o1"])] == ["o1", "o2"]
    assert set(p.offers) == {"o3"}


def test_offers_are_taken_all_or_none() -> None:
    p = pool()
    p.add(HeldOffer.from_mesos(mesos_offer("o1", "a1"), 0))
    assert p.take(["o1", "o2"]) is None, "o2 is no longer held"
    assert set(p.offers) == {"o1"}, "nothing was taken"


def test_an_executor_that_ended_no_longer_counts_as_running_in_held_offers() -> None:
    p = pool()
    running = "ns.app@-@a1@-@0123456789ab"
    p.add(HeldOffer.from_mesos(mesos_offer("o1", "a1", executors=(running,)), 0))
    assert p.agents()[0].executors == frozenset({AppVersion("ns.app", "0123456789ab")})
    p.executor_gone(ExecutorId.parse(running))
    assert p.agents()[0].executors == frozenset()
    assert set(p.offers) == {"o1"}


def test_unused_offers_are_declined_at_the_hold_bound() -> None:
    p = pool()
    p.add(HeldOffer.from_mesos(mesos_offer("old", "a1"), now=0))
    assert p.settle(0, has_work=True, new_work=False).revive  # a subscription's first
    p.add(HeldOffer.from_mesos(mesos_offer("new", "a2"), now=6))
    assert p.next_expiry() == 10
    early = p.settle(9.9, has_work=True, new_work=False)
    assert early.decline == [] and not early.revive and not early.suppress
    due = p.settle(10, has_work=True, new_work=False)
    assert [o.offer_id for o in due.decline] == ["old"]
    assert due.refuse_seconds == 5
    assert p.next_expiry() == 16


def test_idle_pool_declines_everything_and_suppresses_once() -> None:
    p = pool()
    p.add(HeldOffer.from_mesos(mesos_offer("o1", "a1"), now=0))
    idle = p.settle(1, has_work=False, new_work=False)
    assert [o.offer_id for o in idle.decline] == ["o1"]
    assert idle.refuse_seconds == 120
    assert idle.suppress
    assert not p.settle(2, has_work=False, new_work=False).suppress
    assert p.suppressed


def test_work_after_suppression_revives() -> None:
    p = pool()
    p.settle(0, has_work=False, new_work=False)
    actions = p.settle(1, has_work=True, new_work=True)
    assert actions.revive and not p.suppressed
    assert not p.settle(2, has_work=True, new_work=True).revive


def test_new_work_revives_when_declines_may_have_left_filters() -> None:
    p = pool()
    p.add(HeldOffer.from_mesos(mesos_offer("o1", "a1"), now=0))
    p.settle(0, has_work=True, new_work=True)
    assert p.settle(10, has_work=True, new_work=False).decline
    assert not p.settle(11, has_work=True, new_work=False).revive
    assert p.settle(12, has_work=True, new_work=True).revive
    assert not p.settle(13, has_work=True, new_work=True).revive


def test_rescind_and_agent_loss_forget_offers() -> None:
    p = pool()
    p.add(HeldOffer.from_mesos(mesos_offer("o1", "a1"), 0))
    p.add(HeldOffer.from_mesos(mesos_offer("o2", "a2"), 0))
    p.add(HeldOffer.from_mesos(mesos_offer("o3", "a2"), 0))
    assert p.rescind("o1")
    assert not p.rescind("o1")
    assert [o.offer_id for o in p.drop_agent("a2")] == ["o2", "o3"]
    assert p.offers == {}
    assert p.next_expiry() is None


def test_after_a_subscription_suppression_is_unknown_so_work_revives_and_idle_suppresses() -> None:
    # A new leader or a re-subscription cannot know what the master still applies from
    # an earlier SUPPRESS or decline: the first settle says it again either way.
    for earlier in (True, False):
        p = pool()
        p.add(HeldOffer.from_mesos(mesos_offer("o1", "a1"), 0))
        p.settle(0, has_work=not earlier, new_work=False)
        p.clear()
        assert p.offers == {}
        assert p.settle(1, has_work=True, new_work=False).revive
        assert not p.settle(2, has_work=True, new_work=False).revive
        p.clear()
        assert p.settle(3, has_work=False, new_work=False).suppress
        assert not p.settle(4, has_work=False, new_work=False).suppress
    assert pool().settle(0, has_work=True, new_work=False).revive


def test_a_fire_due_soon_holds_offers_and_asks_for_them_like_pending_work() -> None:
    p = pool()
    p.settle(0, has_work=False, new_work=False)
    assert p.suppressed
    p.add(HeldOffer.from_mesos(mesos_offer("o1", "a1"), now=1))
    due = p.settle(1, has_work=False, new_work=False, fire_due=True)
    assert due.revive and due.decline == [] and not due.suppress
    assert set(p.offers) == {"o1"}
    expired = p.settle(11, has_work=False, new_work=False, fire_due=True)
    assert [o.offer_id for o in expired.decline] == ["o1"]
    assert expired.refuse_seconds == 5, "declined as busy: the fire will want the agent soon"
    p.add(HeldOffer.from_mesos(mesos_offer("o2", "a1"), now=12))
    past = p.settle(13, has_work=False, new_work=False, fire_due=False)
    assert [o.offer_id for o in past.decline] == ["o2"] and past.suppress
