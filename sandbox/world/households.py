"""The households' hidden lives: latent traits and a month-by-month simulation of markets, money and mood.

Each household draws traits nobody downstream can see (wealth, growth propensity, engagement
propensity, service sensitivity, price sensitivity, age and life stage). A shared market factor plus
idiosyncratic noise moves its assets; traits drive net flows, advisor contact, service cases and
complaints, new-money and referral opportunities; and an attrition hazard rises with complaints,
unresolved cases, fading engagement, fees that are high for the household's size, and bad returns.
A household that decides to leave shows a large outflow, then the rest goes and its brokerage
accounts close. The simulation runs the 48 history months plus 12 future months; the future is only
ever written to ``truth/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from sandbox.world.config import (
    EARLIEST_CLIENT_SINCE,
    FUTURE_MONTHS,
    HISTORY_MONTHS,
    STREAM_HOUSEHOLDS,
    STREAM_MARKET,
    rng,
)

T_HIST = HISTORY_MONTHS
T_ALL = HISTORY_MONTHS + FUTURE_MONTHS

AUM_BANDS = np.array(["<250K", "250K-1M", "1M-5M", "5M-25M", "25M+"])
AUM_BAND_EDGES = np.array([250_000.0, 1_000_000.0, 5_000_000.0, 25_000_000.0])
# headline advisory fee by the band a household joined in, in basis points a year
BAND_FEE_BPS = np.array([125.0, 100.0, 85.0, 70.0, 55.0])
# fee tiering on the household's total market value: (upper edge, share of the headline rate)
FEE_TIERS = ((1_000_000.0, 1.0), (5_000_000.0, 0.8), (np.inf, 0.6))

RISK_PROFILES = np.array(["Conservative", "Moderate", "Balanced", "Growth", "Aggressive"])
RISK_BETA = np.array([0.35, 0.55, 0.75, 0.95, 1.15])
RISK_IDIO = np.array([0.010, 0.014, 0.018, 0.024, 0.032])
LIFE_STAGES = np.array(["accumulation", "pre_retirement", "retirement"])
ACCOUNT_TYPES = np.array(["Individual", "Joint", "IRA", "Trust"])
CUSTODIANS = np.array(["Atlas", "Meridian"])  # the prime brokers: atlas / meridian in the drop folder


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def market_returns(seed: int) -> np.ndarray:
    """The shared monthly market factor for all 60 months (same for every household)."""
    r = rng(seed, STREAM_MARKET)
    base = r.normal(0.007, 0.038, T_ALL)
    # one drawdown episode somewhere in the history so bad returns exist for everybody
    crash = int(r.integers(6, T_HIST - 6))
    base[crash : crash + 3] += np.array([-0.07, -0.05, 0.02])
    return base


def tiered_fee(mv: np.ndarray, bps: np.ndarray) -> np.ndarray:
    """Monthly fee: headline bps / 12 / 10,000 on the value in each tier times the tier's share."""
    billable = np.zeros_like(mv)
    lower = 0.0
    for upper, share in FEE_TIERS:
        billable += share * np.clip(mv - lower, 0.0, upper - lower)
        lower = upper
    return billable * bps / 12.0 / 10_000.0


def months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + (b.month - a.month)


@dataclass
class HouseholdChunk:
    """One chunk of households: static attributes, monthly paths, activity counts, accounts."""

    start: int  # global index of the first household
    n: int
    # static
    advisor: np.ndarray
    wealth_log10: np.ndarray
    growth: np.ndarray
    engagement: np.ndarray
    service_sensitivity: np.ndarray
    price_sensitivity: np.ndarray
    age: np.ndarray
    life_stage: np.ndarray
    risk_idx: np.ndarray
    fee_bps: np.ndarray
    join_t: np.ndarray  # month index of joining (negative: before the window)
    client_since: np.ndarray  # datetime64[D]
    marketing_consent: np.ndarray
    analytics_consent: np.ndarray
    # dynamics (n, T_ALL)
    mv: np.ndarray
    flows: np.ndarray
    fees: np.ndarray
    calls: np.ndarray
    emails: np.ndarray
    meetings: np.ndarray
    cases: np.ndarray
    complaints: np.ndarray
    stalled: np.ndarray
    opp_new_money: np.ndarray  # 0 none, 1 won, 2 lost, 3 still open
    opp_amount: np.ndarray
    referrals: np.ndarray
    # leaving
    decide_t: np.ndarray  # month the household decided to leave (T_ALL = never)
    close_t: np.ndarray  # month the accounts closed (T_ALL = never)
    attrited_on: np.ndarray  # datetime64[D], NaT if never
    # accounts (flat)
    acct_household: np.ndarray  # local household index
    acct_type: np.ndarray
    acct_custodian: np.ndarray
    acct_share: np.ndarray

    @property
    def n_accounts(self) -> int:
        return len(self.acct_household)


def simulate_chunk(seed: int, chunk: int, start: int, n: int, n_advisors: int, as_of: date,
                   market: np.ndarray) -> HouseholdChunk:
    r = rng(seed, STREAM_HOUSEHOLDS, chunk)
    window_start = np.datetime64(f"{as_of.year:04d}-{as_of.month:02d}", "M") - (T_HIST - 1)
    month_starts = (window_start + np.arange(T_ALL + 1)).astype("datetime64[D]")
    month_days = np.diff(month_starts).astype(int)

    # --- latent traits -------------------------------------------------------------------------
    advisor = r.integers(0, n_advisors, n)
    advisor_quality = rng(seed, STREAM_HOUSEHOLDS, 10_000_019).normal(0.0, 0.3, n_advisors)[advisor]
    wealth_log10 = r.normal(5.85, 0.55, n)
    wz = (wealth_log10 - 5.85) / 0.55
    growth = r.normal(0.0, 1.0, n)
    engagement = r.normal(0.0, 1.0, n)
    service = r.normal(0.0, 1.0, n)
    price = r.normal(0.0, 1.0, n)
    age = np.clip(r.normal(57.0, 13.0, n) + 3.0 * wz, 24.0, 92.0)
    life_stage = np.where(age < 45, 0, np.where(age < 63, 1, 2))
    risk_score = 0.6 * growth - 0.035 * (age - 57.0) + r.normal(0.0, 0.7, n)
    risk_idx = np.digitize(risk_score, [-1.2, -0.4, 0.4, 1.2])

    # joining: most households joined before the window, a quarter inside it
    span = months_between(EARLIEST_CLIENT_SINCE, as_of)
    joined_before = r.random(n) < 0.75
    join_t = np.where(
        joined_before,
        -r.integers(1, span - T_HIST + 2, n),
        r.integers(0, T_HIST, n),
    )
    join_month_start = (window_start + join_t).astype("datetime64[D]")
    join_day = r.integers(0, 28, n)
    client_since = join_month_start + join_day

    band0 = np.digitize(10**wealth_log10, AUM_BAND_EDGES)
    fee_bps = np.round((BAND_FEE_BPS[band0] - 4.0 * price + r.normal(0.0, 9.0, n)) * 2.0) / 2.0
    fee_bps = np.clip(fee_bps, 25.0, 175.0)
    fee_excess = (fee_bps - BAND_FEE_BPS[band0]) / 12.0
    marketing_consent = r.random(n) < 0.7
    analytics_consent = r.random(n) < 0.93

    # --- monthly simulation -------------------------------------------------------------------
    shape = (n, T_ALL)
    mv_path = np.zeros(shape)
    flows = np.zeros(shape)
    fees = np.zeros(shape)
    calls = np.zeros(shape, dtype=np.int16)
    emails = np.zeros(shape, dtype=np.int16)
    meetings = np.zeros(shape, dtype=np.int16)
    cases = np.zeros(shape, dtype=np.int16)
    complaints = np.zeros(shape, dtype=np.int16)
    stalled = np.zeros(shape, dtype=np.int16)
    opp = np.zeros(shape, dtype=np.int8)
    opp_amount = np.zeros(shape)
    referrals = np.zeros(shape, dtype=np.int8)

    # value when entering the window (or the initial deposit when joining inside it)
    mv = np.where(join_t < 0, 10**wealth_log10, 10 ** (wealth_log10 - r.uniform(0.0, 0.3, n)))
    beta = RISK_BETA[risk_idx]
    idio = RISK_IDIO[risk_idx]
    flow_rate = 0.0015 + 0.005 * growth * (life_stage < 2) - 0.003 * (life_stage == 2)
    eng_state = np.zeros(n)
    ret_hist = np.zeros((n, 6))
    decide_t = np.full(n, T_ALL)
    close_t = np.full(n, T_ALL)
    outflow_share = r.uniform(0.45, 0.8, n)
    alive = np.ones(n, dtype=bool)

    for t in range(T_ALL):
        active = (join_t <= t) & alive
        new_now = join_t == t
        mv = np.where(new_now, 10 ** (wealth_log10 - r.uniform(0.0, 0.3, n)), mv)
        tenure = t - join_t

        # engagement drifts around the household's propensity
        eng_state = 0.85 * eng_state + r.normal(0.0, 0.35, n)
        eng_now = engagement + eng_state + advisor_quality
        recent_complaints = complaints[:, max(0, t - 12) : t].sum(axis=1)
        lam_call = 0.09 * np.exp(0.65 * eng_now + 0.25 * wz) * (1.0 + 0.6 * (recent_complaints > 0))
        lam_email = 0.08 * np.exp(0.5 * eng_now + 0.15 * wz)
        lam_meet = 0.035 * np.exp(0.6 * eng_now + 0.35 * wz)
        calls[:, t] = r.poisson(np.minimum(lam_call, 6.0)) * active
        emails[:, t] = r.poisson(np.minimum(lam_email, 6.0)) * active
        meetings[:, t] = r.poisson(np.minimum(lam_meet, 3.0)) * active

        # returns: market factor times the profile's beta plus idiosyncratic noise
        ret = beta * market[t] + idio * r.standard_normal(n)
        ret_hist = np.roll(ret_hist, -1, axis=1)
        ret_hist[:, -1] = np.where(active, ret, 0.0)
        ret6 = ret_hist.sum(axis=1)

        # service cases: sensitive households file more, bad markets turn cases into complaints
        lam_case = 0.035 * np.exp(0.55 * service + 0.15 * wz)
        cases[:, t] = r.poisson(lam_case) * active
        p_complaint = _sigmoid(-1.6 + 0.9 * service - 12.0 * np.minimum(ret6, 0.0) - 0.3 * eng_now)
        complaints[:, t] = r.binomial(cases[:, t], p_complaint)
        p_stall = _sigmoid(-2.2 + 0.5 * service + 0.4 * (complaints[:, t] > 0))
        stalled[:, t] = r.binomial(cases[:, t], p_stall)
        unresolved = stalled[:, max(0, t - 3) : t + 1].sum(axis=1)

        # opportunities: new money (won -> lump inflow) and referrals
        p_opp = 0.025 * np.exp(0.55 * growth + 0.35 * eng_now)
        has_opp = (r.random(n) < np.minimum(p_opp, 0.5)) & active
        won = has_opp & (r.random(n) < 0.5 + 0.1 * np.tanh(eng_now))
        amount = mv * r.uniform(0.05, 0.6, n) * np.exp(0.35 * growth)
        opp[:, t] = np.where(has_opp, np.where(won, 1, 2), 0)
        opp_amount[:, t] = np.where(has_opp, amount, 0.0)
        p_ref = 0.008 * np.exp(0.6 * eng_now + 0.3 * growth)
        referrals[:, t] = (r.random(n) < np.minimum(p_ref, 0.3)) & active

        # attrition hazard
        logit = (
            -5.15
            + 0.75 * recent_complaints
            + 0.5 * unresolved
            - 0.45 * eng_now
            + 0.35 * price * np.maximum(fee_excess, 0.0)
            + 0.25 * fee_excess
            - 4.0 * ret6
            + 0.5 * (age > 78)
            + 0.4 * ((tenure >= 0) & (tenure < 18))
        )
        decides = active & (decide_t == T_ALL) & (r.random(n) < _sigmoid(logit))
        decide_t = np.where(decides, t, decide_t)

        flow = mv * (flow_rate + 0.012 * r.standard_normal(n)) + np.where(won, amount, 0.0)
        # partial transfers out: a service-sensitive or price-sensitive household moves part of its money
        p_partial = 0.006 * np.exp(0.4 * service + 0.4 * price + 0.5 * (unresolved > 0))
        partial = r.random(n) < p_partial
        flow = flow - np.where(partial, mv * r.uniform(0.15, 0.6, n), 0.0)
        # liquidity events: an inheritance or a business sale brings money in; a house, a gift or
        # a second adviser takes it out (retirees draw down more often)
        event = r.random(n) < 0.012 * np.exp(0.3 * np.abs(growth))
        inflow = r.random(n) < np.where(life_stage == 2, 0.35, 0.55) + 0.1 * np.tanh(growth)
        size = np.where(inflow, r.uniform(0.2, 1.5, n), -r.uniform(0.2, 0.6, n))
        flow = flow + np.where(event, size * mv, 0.0)
        flow = np.maximum(flow, -0.7 * mv)
        leaving_first = decide_t == t
        leaving_rest = (decide_t == t - 1) & alive
        flow = np.where(leaving_first, -outflow_share * mv, flow)
        mv_grown = mv * (1.0 + ret)
        flow = np.where(leaving_rest, -mv_grown, flow)
        flow = np.where(active, flow, 0.0)
        mv_new = np.where(active, np.maximum(mv_grown + flow, 0.0), mv)
        mv_new = np.where(leaving_rest, 0.0, mv_new)
        close_t = np.where(leaving_rest, t, close_t)
        alive &= ~leaving_rest

        mv = mv_new
        # fee renegotiations: price-sensitive households talk their rate down now and then
        renegotiate = active & (r.random(n) < 0.006 * np.exp(0.7 * price))
        fee_bps = np.where(renegotiate, np.round(fee_bps * r.uniform(0.6, 0.9, n) * 2.0) / 2.0, fee_bps)
        mv_path[:, t] = np.where(active, mv, 0.0)
        flows[:, t] = flow
        fees[:, t] = np.where(active, tiered_fee(mv, fee_bps), 0.0)
        if t == T_HIST - 1:
            fee_bps_as_of = fee_bps.copy()  # what the CRM shows; later renegotiations are the future

    # an open opportunity is one created in the last 2 history months that is not decided yet
    recent = np.zeros(shape, dtype=bool)
    recent[:, T_HIST - 2 : T_HIST] = True
    opp = np.where((opp > 0) & recent & (r.random(shape) < 0.6), 3, opp).astype(np.int8)

    closed = close_t < T_ALL
    close_day = np.minimum(r.integers(0, 28, n), month_days[np.minimum(close_t, T_ALL - 1)] - 1)
    attrited_on = np.where(
        closed, month_starts[np.minimum(close_t, T_ALL - 1)] + close_day, np.datetime64("NaT")
    ).astype("datetime64[D]")

    # brokerage accounts
    n_acct = np.minimum(1 + r.poisson(np.clip(0.35 + 0.3 * wz, 0.05, 3.0)), 6)
    acct_household = np.repeat(np.arange(n), n_acct)
    first = np.r_[True, acct_household[1:] != acct_household[:-1]]
    type_p = np.where(first[:, None], [[0.5, 0.35, 0.1, 0.05]], [[0.2, 0.2, 0.45, 0.15]])
    type_p = type_p * np.where(wz[acct_household, None] > 1.0, [[1.0, 1.0, 1.0, 4.0]], 1.0)
    type_p /= type_p.sum(axis=1, keepdims=True)
    u = r.random(len(acct_household))
    acct_type = (u[:, None] > np.cumsum(type_p, axis=1)).sum(axis=1)
    acct_custodian = (r.random(len(acct_household)) < 0.4).astype(np.int8)
    weight = r.exponential(1.0, len(acct_household)) + np.where(first, 1.0, 0.0)
    total = np.bincount(acct_household, weights=weight, minlength=n)
    acct_share = weight / total[acct_household]

    return HouseholdChunk(
        start=start, n=n, advisor=advisor, wealth_log10=wealth_log10, growth=growth,
        engagement=engagement, service_sensitivity=service, price_sensitivity=price, age=age,
        life_stage=life_stage, risk_idx=risk_idx, fee_bps=fee_bps_as_of, join_t=join_t,
        client_since=client_since, marketing_consent=marketing_consent,
        analytics_consent=analytics_consent, mv=mv_path, flows=flows, fees=fees, calls=calls,
        emails=emails, meetings=meetings, cases=cases, complaints=complaints, stalled=stalled,
        opp_new_money=opp, opp_amount=opp_amount, referrals=referrals, decide_t=decide_t,
        close_t=close_t, attrited_on=attrited_on, acct_household=acct_household,
        acct_type=acct_type, acct_custodian=acct_custodian, acct_share=acct_share,
    )
