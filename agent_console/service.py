"""Staff accounts, their sessions, the audit log, inquiries and the erasure records: the rules,
no HTTP. The front door: callers import from here; the work lives in ``staff_accounts`` (accounts,
passwords, desk phones), ``staff_sessions`` (signing in, sessions, who is on duty), ``audit_log``
(the chained log, its check, search and purge), ``inquiries`` (notes and categories) and
``erasure_records`` (erasure records, certificates, the office's part of the monthly report).

The contract (seed 002, システム上の対策 1-2) asks for personal IDs and passwords, access
updated whenever staff change, and operation logs kept and checked. So: argon2id passwords,
lock-out after repeated failures, sessions looked up on every request (a deactivated account is
out at once), an idle timeout, and an audit log whose events are chained by a keyed hash.
"""

from __future__ import annotations

from agent_console.agent_states import (
    REASON_NAMES,
    STATE_NAMES,
    WRAP_UP_SECONDS,
    AgentNow,
    AgentTime,
    NotReady,
    choose_state,
    make_sure_ready,
    occupancy,
    settle_lapsed,
    state_now,
    states_now,
    time_in_states,
)
from agent_console.audit_log import (
    GENESIS,
    AuditEntry,
    ChainReport,
    audit,
    check_chain,
    purge_audit,
    search_audit,
)
from agent_console.countersign import countersign
from agent_console.erasure_records import (
    ERASURE_METHOD,
    Erasure,
    OfficePeriod,
    certificate_text,
    erasures,
    get_erasure,
    last_erasure_at,
    office_period,
    record_erasure,
)
from agent_console.inquiries import (
    Category,
    InquiryView,
    all_categories,
    categories,
    erase_personal_data,
    inquiries_for,
    log_inquiry,
    save_category,
)
from agent_console.staff_accounts import (
    MIN_PASSWORD_LENGTH,
    Staff,
    StaffError,
    check_password,
    create_staff,
    deactivate,
    get_staff,
    list_staff,
    set_desk_phone,
    set_role,
)

# The password hasher, for the test that checks it runs one hash at a time.
from agent_console.staff_accounts import _hasher as _hasher
from agent_console.staff_sessions import (
    IDLE_MINUTES,
    LOCK_MINUTES,
    MAX_FAILED_LOGINS,
    SECOND_FACTOR_ALWAYS,
    OnDuty,
    Seat,
    SignedIn,
    on_duty,
    session_for,
    sign_in,
    sign_out,
)

__all__ = [
    "ERASURE_METHOD",
    "GENESIS",
    "IDLE_MINUTES",
    "LOCK_MINUTES",
    "MAX_FAILED_LOGINS",
    "MIN_PASSWORD_LENGTH",
    "REASON_NAMES",
    "SECOND_FACTOR_ALWAYS",
    "STATE_NAMES",
    "WRAP_UP_SECONDS",
    "AgentNow",
    "AgentTime",
    "AuditEntry",
    "Category",
    "ChainReport",
    "Erasure",
    "InquiryView",
    "NotReady",
    "OfficePeriod",
    "OnDuty",
    "Seat",
    "SignedIn",
    "Staff",
    "StaffError",
    "all_categories",
    "audit",
    "categories",
    "certificate_text",
    "check_chain",
    "check_password",
    "choose_state",
    "countersign",
    "create_staff",
    "deactivate",
    "erase_personal_data",
    "erasures",
    "get_erasure",
    "get_staff",
    "inquiries_for",
    "last_erasure_at",
    "list_staff",
    "log_inquiry",
    "make_sure_ready",
    "occupancy",
    "office_period",
    "on_duty",
    "purge_audit",
    "record_erasure",
    "save_category",
    "search_audit",
    "session_for",
    "set_desk_phone",
    "set_role",
    "settle_lapsed",
    "sign_in",
    "sign_out",
    "state_now",
    "states_now",
    "time_in_states",
]
