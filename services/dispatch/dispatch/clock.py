"""The injected time source: the app and the worker loops ask it for "now", so tests move time
instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from dispatch.settings import DispatchSettings
from shared.api import runtime_of

Clock = Callable[[], datetime]


def now_of(request: Request) -> datetime:
    clock = request.app.state.clock
    moment = clock()
    assert isinstance(moment, datetime)
    return moment


def settings_of(request: Request) -> DispatchSettings:
    settings = runtime_of(request).settings
    assert isinstance(settings, DispatchSettings)
    return settings


NowDep = Annotated[datetime, Depends(now_of)]
SettingsDep = Annotated[DispatchSettings, Depends(settings_of)]
