"""The phone line's records, the front door other packages use: calls (who, the way through the
menus, the outcome), callback requests, the agents' queue, the call center's figures and the FAQ.
No HTTP here; ``ivr.flow`` holds the dialogue and ``ivr.routes`` the webhooks.

Other packages (the agent console, the monthly report, retention) read and change calls and
callbacks through these names, never the tables. The work lives in ``ivr.calls`` (a call and
its state), ``ivr.callbacks``, ``ivr.agents`` (calls handed to a person), ``ivr.figures`` (the
wallboard and the monthly figures) and ``ivr.faq``; ``ivr.line_chat`` the LINE users who still
follow the ward's account.
"""

from __future__ import annotations

from ivr.agent_calls import (
    TIMED_OUT,
    AgentCall,
    agent_call,
    agent_calls,
    close_lapsed_wrap_ups,
)
from ivr.agents import (
    WAITING_HORIZON,
    CallView,
    WaitingCall,
    agents_on_calls,
    claim_call,
    get_call,
    my_open_call,
    release_call,
    waiting_calls,
    wrap_up,
)
from ivr.callbacks import (
    CALLBACK_OUTCOMES,
    CallbackView,
    ask_agents_to_call,
    callback_number,
    claim_callback,
    close_callback,
    finish_callback,
    open_callbacks,
    request_callback,
)
from ivr.calls import (
    CHOICES,
    QUEUE_RESULTS,
    STEP_NAMES,
    WITHHELD,
    Caller,
    CallsErased,
    CallState,
    caller_of,
    end_call,
    end_talk,
    erase_personal_data,
    keep_voice_answer,
    load_state,
    lock_call,
    note_event,
    note_lookup,
    note_step,
    put_through_number,
    put_through_to,
    read_caller,
    readable_path,
    save_state,
    set_outcome,
    start_call,
)
from ivr.faq import (
    MAX_FAQ_ON_THE_LINE,
    Faq,
    faq_entries,
    update_faq,
)
from ivr.figures import (
    SERVICE_LEVEL_SECONDS,
    CallPeriod,
    QueueFigures,
    Wallboard,
    calls_between,
    wallboard,
)
from ivr.line_chat import erase_line_users, following_users

__all__ = [
    "CALLBACK_OUTCOMES",
    "CHOICES",
    "MAX_FAQ_ON_THE_LINE",
    "QUEUE_RESULTS",
    "SERVICE_LEVEL_SECONDS",
    "STEP_NAMES",
    "TIMED_OUT",
    "WAITING_HORIZON",
    "WITHHELD",
    "AgentCall",
    "CallPeriod",
    "CallState",
    "CallView",
    "CallbackView",
    "Caller",
    "CallsErased",
    "Faq",
    "QueueFigures",
    "WaitingCall",
    "Wallboard",
    "agent_call",
    "agent_calls",
    "agents_on_calls",
    "ask_agents_to_call",
    "callback_number",
    "caller_of",
    "calls_between",
    "claim_call",
    "claim_callback",
    "close_callback",
    "close_lapsed_wrap_ups",
    "end_call",
    "end_talk",
    "erase_line_users",
    "erase_personal_data",
    "faq_entries",
    "finish_callback",
    "following_users",
    "get_call",
    "keep_voice_answer",
    "load_state",
    "lock_call",
    "my_open_call",
    "note_event",
    "note_lookup",
    "note_step",
    "open_callbacks",
    "put_through_number",
    "put_through_to",
    "read_caller",
    "readable_path",
    "release_call",
    "request_callback",
    "save_state",
    "set_outcome",
    "start_call",
    "update_faq",
    "waiting_calls",
    "wallboard",
    "wrap_up",
]
