"""Whose shift is it (issue 18, points 5 and 12), over HTTP on a real database.

A shift belongs to the cashier who opened it. Another cashier may not read its report, take cash
in or out, sell on it or close it without a manager's approval: a manager or admin acting
themself, or a manager's PIN checked by the server. Handing the shift over (接班) is the feature
that makes this livable: a manager approves, the open shift passes to the new cashier, audited.

Closing needs a count (a blank one is refused) and, for a difference over the hall's
``shift_difference_limit_fen``, a manager's approval; the hall settings page sets that limit, and
the till's count has 角 and 分 where 抹零 is off.
"""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from inventory.models import AuditEvent, Setting
from pos.hall import settings as hall_settings_service
from pos.hall import shifts as shift_service
from pos.core.db import session_scope
from pos.core.errors import ShiftError
from pos.models import CashMovement, Sale, Shift, ShiftStatus, User
from tests.conftest import AuthActions, csrf_token
from tests.fixtures.till import MANAGER_PIN, assert_error, hall, login, sale_body  # noqa: F401  (fixture)
from tests.fixtures.till import page_config

FLOAT = 20000


@pytest.fixture
def people(app, make_user, hall):
    """Two cashiers (the owner of H1's shift and another) and the manager, each with a client."""
    make_user("cash2", "cashier", display_name="杨二")
    clients = {}
    for username in ("cash", "cash2", "boss"):
        client = app.test_client()
        clients[username] = login(client, AuthActions(client), username)
    opened = clients["cash"].post("/api/v1/shifts", {"till": "H1", "opening_float_fen": FLOAT})
    assert opened.status_code == 201, opened.get_json()
    clients["shift_id"] = opened.get_json()["id"]
    return clients


def user_id(app, username: str) -> int:
    with session_scope(app) as s:
        return s.scalar(select(User.id).where(User.username == username))


def state(app, shift_id: int) -> tuple:
    """What a refused request must not change."""
    with session_scope(app) as s:
        shift = s.get(Shift, shift_id)
        return (shift.status, shift.cashier_id, s.scalar(select(func.count()).select_from(CashMovement)),
                s.scalar(select(func.count()).select_from(Sale)))


def audits(app, action: str) -> list[AuditEvent]:
    with session_scope(app) as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
        s.expunge_all()
        return rows


def act(caller, action: str, shift_id: int, hall, pin):
    extra = {"approval_pin": pin} if pin else {}
    if action == "report":
        return caller.get(f"/api/v1/shifts/{shift_id}/report")
    if action == "cash":
        return caller.post(f"/api/v1/shifts/{shift_id}/cash",
                           {"kind": "in", "amount_fen": 500, "reason": "补充零钱", **extra})
    if action == "sale":
        return caller.post("/api/v1/sales", sale_body(hall, **extra))
    if action == "close":  # counted exactly what is expected: the float
        return caller.post(f"/api/v1/shifts/{shift_id}/close", {"denominations": {"10000": 2}, **extra})
    raise AssertionError(action)


# who, with which PIN → the status of each action on the cashier "cash"'s open shift
WHO = {
    "owner": ("cash", None),
    "another cashier": ("cash2", None),
    "another cashier, wrong PIN": ("cash2", "1111"),
    "another cashier, manager's PIN": ("cash2", MANAGER_PIN),
    "the manager themself": ("boss", None),
}
OK = {"report": 200, "cash": 201, "sale": 201, "close": 200}
TABLE = {
    "owner": OK,
    "another cashier": {"report": 403, "cash": 403, "sale": 403, "close": 403},
    "another cashier, wrong PIN": {"report": 403, "cash": 403, "sale": 403, "close": 403},
    # a GET carries no PIN: reading another's report takes a handover (接班) or a manager's login
    "another cashier, manager's PIN": {"report": 403, "cash": 201, "sale": 201, "close": 200},
    "the manager themself": OK,
}
CASES = [(who, action, TABLE[who][action]) for who in TABLE for action in OK]


@pytest.mark.parametrize("who,action,status", CASES, ids=[f"{w}-{a}" for w, a, _ in CASES])
def test_point5_who_may_do_what_on_whose_shift_api(app, hall, people, who, action, status):
    username, pin = WHO[who]
    shift_id = people["shift_id"]
    before = state(app, shift_id)
    response = act(people[username], action, shift_id, hall, pin)
    if status >= 400:
        body = assert_error(response, status)
        if pin != "1111":
            assert "班次" in body["error"] and "店长授权" in body["error"], body  # says whose and what to do
        assert state(app, shift_id) == before  # refused: nothing changed
        return
    assert response.status_code == status, response.get_json()
    if who == "another cashier, manager's PIN":
        (event,) = audits(app, "shift.override")
        assert event.user_id == user_id(app, "cash2")
        assert json.loads(event.after) == {"action": action, "owner_id": user_id(app, "cash"),
                                           "approved_by_id": user_id(app, "boss")}


def test_point5_handover_needs_a_manager_and_passes_the_shift_audited(app, hall, people):
    shift_id = people["shift_id"]
    owner, other = people["cash"], people["cash2"]
    url = f"/api/v1/shifts/{shift_id}/handover"
    assert_error(other.post(url, {}), 403, "店长授权", field="approval_pin")
    assert_error(other.post(url, {"approval_pin": "1111"}), 403, field="approval_pin")
    assert state(app, shift_id)[1] == user_id(app, "cash")

    taken = other.post(url, {"approval_pin": MANAGER_PIN})
    assert taken.status_code == 200, taken.get_json()
    assert (taken.get_json()["cashier"], taken.get_json()["status"]) == ("杨二", "open")
    (event,) = audits(app, "shift.handover")
    assert event.user_id == user_id(app, "cash2") and event.entity_id == str(shift_id)
    assert json.loads(event.before) == {"cashier_id": user_id(app, "cash")}
    assert json.loads(event.after) == {"cashier_id": user_id(app, "cash2"), "approved_by_id": user_id(app, "boss")}

    # the shift is the new cashier's now: the old one needs approval, the new one does not
    assert_error(act(owner, "cash", shift_id, hall, None), 403)
    assert act(other, "report", shift_id, hall, None).status_code == 200
    assert act(other, "sale", shift_id, hall, None).status_code == 201
    assert_error(other.post(url, {"approval_pin": MANAGER_PIN}), 422, "已是你的班次")
    assert act(other, "close", shift_id, hall, None).status_code == 403  # the sale's cash is not counted
    counted = {"10000": 3, "5000": 1, "2000": 1, "1000": 1, "500": 1, "200": 1, "50": 1, "20": 1, "10": 1, "5": 1,
               "2": 1}  # ¥387.87: the float and the sale's cash, to the fen
    closed = other.post(f"/api/v1/shifts/{shift_id}/close", {"denominations": counted})
    assert closed.status_code == 200, closed.get_json()
    assert closed.get_json()["difference_fen"] == 0
    assert_error(other.post(url, {"approval_pin": MANAGER_PIN}), 422, "已交班")


def test_point5_a_manager_takes_over_without_a_pin(app, hall, people):
    response = people["boss"].post(f"/api/v1/shifts/{people['shift_id']}/handover", {})
    assert response.status_code == 200, response.get_json()
    assert state(app, people["shift_id"])[1] == user_id(app, "boss")


def test_point5_a_resent_sale_is_answered_after_a_handover(app, hall, people):
    """The owner's sale whose answer was lost is sent again after the shift changed hands: the
    same sale comes back, nothing is refused or doubled."""
    body = sale_body(hall)
    first = people["cash"].post("/api/v1/sales", body)
    assert first.status_code == 201
    assert people["cash2"].post(f"/api/v1/shifts/{people['shift_id']}/handover",
                                {"approval_pin": MANAGER_PIN}).status_code == 200
    again = people["cash"].post("/api/v1/sales", body)
    assert again.status_code == 200 and again.get_json() == first.get_json()


PAGES = [
    # (role's user, path, status): the manager's shift pages are the manager's; the till is everyone's
    ("cash", "/shifts/{id}", 403),
    ("cash2", "/shifts/{id}", 403),
    ("cash2", "/shifts/", 403),
    ("cash2", "/shifts/settings", 403),
    ("boss", "/shifts/{id}", 200),
    ("boss", "/shifts/", 200),
    ("cash", "/till?till=H1", 200),
    ("cash2", "/till?till=H1", 200),
]


@pytest.mark.parametrize("username,path,status", PAGES, ids=[f"{u} {p}" for u, p, _ in PAGES])
def test_point5_who_may_see_which_shift_page(app, hall, people, username, path, status):
    response = people[username].client.get(path.format(id=people["shift_id"]))
    assert response.status_code == status
    if path.startswith("/till"):
        # the page tells its script who is at the till, so another's shift is offered for 接班
        assert page_config(response.get_data(as_text=True))["user"]["id"] == user_id(app, username)


def test_point5_the_till_script_offers_handover_for_another_cashiers_shift(app, hall, people):
    html = people["cash2"].client.get("/till?till=H1").get_data(as_text=True)
    assert 'id="dlg-handover"' in html and "店长授权接班" in html
    current = people["cash2"].get("/api/v1/shifts/current", till="H1").get_json()
    assert current["shift"]["cashier_id"] == user_id(app, "cash")  # what the script compares


# --- point 12: the count, the difference limit, 角 and 分 -------------------------------------------

def test_point12_a_blank_count_is_refused(app, hall, people, session):
    shift_id = people["shift_id"]
    before = state(app, shift_id)
    assert_error(people["cash"].post(f"/api/v1/shifts/{shift_id}/close", {"denominations": {}}), 422,
                 field="denominations")
    assert_error(people["cash"].post(f"/api/v1/shifts/{shift_id}/close", {}), 422, field="denominations")
    assert state(app, shift_id) == before and state(app, shift_id)[0] == ShiftStatus.OPEN
    with pytest.raises(ShiftError, match="清点"):
        shift_service.close_shift(session, shift_id, denominations={}, closed_by_id=user_id(app, "boss"))
    session.rollback()
    # zeros typed are a count (an empty drawer): refused only for the difference, by the limit
    response = people["cash"].post(f"/api/v1/shifts/{shift_id}/close", {"denominations": {"10000": 0}})
    assert_error(response, 403, "差额", "¥200.00", field="approval_pin")


def test_point12_a_difference_over_the_hall_limit_needs_a_manager(app, hall, people):
    shift_id = people["shift_id"]
    url = f"/api/v1/shifts/{shift_id}/close"
    short_100 = {"denominations": {"10000": 1}}
    body = assert_error(people["cash"].post(url, short_100), 403, "-¥100.00", "¥10.00", field="approval_pin")
    assert "需要店长授权" in body["error"]
    assert_error(people["cash"].post(url, dict(short_100, approval_pin="1111")), 403, field="approval_pin")
    assert state(app, shift_id)[0] == ShiftStatus.OPEN
    closed = people["cash"].post(url, dict(short_100, approval_pin=MANAGER_PIN))
    assert closed.status_code == 200, closed.get_json()
    assert closed.get_json()["difference_fen"] == -10000
    (event,) = audits(app, "shift.close")
    assert json.loads(event.after)["approved_by_id"] == user_id(app, "boss")


def test_point12_a_difference_within_the_limit_needs_nobody(app, hall, people):
    with session_scope(app) as s:
        hall_settings_service.set_setting(s, "shift_difference_limit_fen", "500", actor_id=None)
    url = f"/api/v1/shifts/{people['shift_id']}/close"
    over = {"10000": 1, "5000": 1, "2000": 2, "200": 2, "50": 1, "20": 2, "5": 1}  # ¥194.95: ¥5.05 short
    assert_error(people["cash"].post(url, {"denominations": over}), 403, "-¥5.05", "¥5.00")
    within = {"10000": 1, "5000": 1, "2000": 2, "500": 1}  # ¥195.00: ¥5.00 short, the limit itself
    response = people["cash"].post(url, {"denominations": within})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["difference_fen"] == -500


def test_point12_hall_settings_page_sets_the_difference_limit(app, hall, people):
    manager = people["boss"].client
    page = manager.get("/shifts/settings").get_data(as_text=True)
    assert "交班差额上限（元）" in page and 'value="10.00"' in page  # the default, ¥10.00
    token = csrf_token(manager, "/shifts/settings")
    base = {"csrf_token": token, "discount_limit_percent": "10"}
    for typed in ("abc", "-1", "1.234", "1e3", "2000000"):
        refused = manager.post("/shifts/settings", data=dict(base, shift_difference_limit=typed))
        assert refused.status_code == 400, typed
        assert "交班差额上限" in refused.get_data(as_text=True)
    with session_scope(app) as s:
        assert hall_settings_service.hall_settings(s).shift_difference_limit_fen == 1000
    saved = manager.post("/shifts/settings", data=dict(base, shift_difference_limit=" 25.5 "))
    assert saved.status_code == 302
    with session_scope(app) as s:
        assert hall_settings_service.hall_settings(s).shift_difference_limit_fen == 2550
        assert s.get(Setting, "shift_difference_limit_fen").value == "2550"
    (event,) = [e for e in audits(app, "setting.change") if e.entity_id == "shift_difference_limit_fen"]
    assert json.loads(event.after) == {"value": "2550"}
    assert 'value="25.50"' in manager.get("/shifts/settings").get_data(as_text=True)


@pytest.mark.parametrize("rounding,fen_coins", [(False, [50, 20, 10, 5, 2, 1]), (True, [50, 20, 10])])
def test_point12_the_till_count_has_jiao_and_fen_where_rounding_is_off(app, hall, people, rounding, fen_coins):
    with session_scope(app) as s:
        s.merge(Setting(key="rounding_to_jiao", value="true" if rounding else "false"))
    config = page_config(people["cash"].client.get("/till?till=H1").get_data(as_text=True))
    values = [d["fen"] for d in config["denominations"]]
    assert values == [10000, 5000, 2000, 1000, 500, 200, 100] + fen_coins
    labels = {d["fen"]: d["label"] for d in config["denominations"]}
    assert labels[50] == "5 角" and labels[10] == "1 角"
    if not rounding:
        assert (labels[5], labels[2], labels[1]) == ("5 分", "2 分", "1 分")
    assert set(values) <= set(shift_service.DENOMINATIONS)  # every one the server accepts


def test_point5_the_managers_shift_report_shows_the_handover(app, hall, people):
    shift_id = people["shift_id"]
    assert people["cash2"].post(f"/api/v1/shifts/{shift_id}/handover", {"approval_pin": MANAGER_PIN}).status_code == 200
    page = people["boss"].client.get(f"/shifts/{shift_id}").get_data(as_text=True)
    assert 'id="report-handovers"' in page
    assert "cash → 杨二" in page and "店长 boss 授权" in page
