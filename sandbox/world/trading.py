"""Trading: instruments, orders, allocations, FIX fills, prime-broker confirms, breaks and anomalies.

Per business day and per chunk of allocations (vectorised, no per-row Python): orders are placed
for one prime broker's block account and allocated to that broker's client accounts; the executing
broker fills each order in 1-4 partial fills (FIX drop copy); each allocation is booked in the
internal trade book and confirmed by its prime broker in that broker's CSV dialect. Then breaks
and benign differences are injected at known rows and recorded in ``truth/breaks.parquet``;
anomalies (consistent on both sides, so no matching rule catches them) go to
``truth/anomalies.parquet``.

Matching tolerances this world assumes (the warehouse keeps its own copy in a dbt seed); a
confirm matches its internal allocation when, after converting the broker's price convention:

- quantity: exactly equal (``QUANTITY_TOLERANCE``);
- price: ``|confirm - internal| <= max(PRICE_TOLERANCE_ABS, PRICE_TOLERANCE_BPS / 10_000 * internal)``
  — benign ``rounding`` differences are confirms printed to 4 decimals (|diff| <= 0.00005);
  ``price`` breaks differ by at least 0.2 % and 0.001;
- commission and fees: within ``MONEY_TOLERANCE`` (one cent); ``commission`` breaks differ by >= 2.00;
- settlement date, side, account, currency: exactly equal;
- trade date: the business date in America/New_York, never the UTC date of ``trade_time``
  (benign ``timezone`` rows are executions after 20:00 New York time, already the next UTC day);
- FIX fills of an order summing to the order's quantity are one execution (benign ``split_fill``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from sandbox.world.config import STREAM_INSTRUMENTS, STREAM_TRADES, add_business_days, rng

QUANTITY_TOLERANCE = 0
PRICE_TOLERANCE_ABS = 0.0001
PRICE_TOLERANCE_BPS = 1.0
MONEY_TOLERANCE = 0.01
SETTLEMENT_DAYS_TOLERANCE = 0

BREAK_RATE = 0.012  # share of allocations with an injected break (all types together)
ROUNDING_RATE = 0.003  # benign price rounding on the confirm
TIMEZONE_RATE = 0.003  # orders executed after 20:00 New York time
PRICE_OUTLIER_RATE = 0.0003  # orders
SIZE_OUTLIER_RATE = 0.0003  # allocations
CLOSED_ACCOUNT_RATE = 0.0002  # allocations

BREAK_TYPES = (
    "missing_internal", "missing_broker", "missing_confirm", "quantity", "price", "side",
    "settlement_date", "account", "commission", "currency", "duplicate",
)
BREAK_WEIGHTS = np.array([1.0, 0.6, 1.2, 1.0, 1.0, 0.5, 0.8, 0.6, 0.8, 0.4, 0.8])
BENIGN_TYPES = ("rounding", "split_fill", "timezone")

ASSET_CLASSES = np.array(["EQUITY", "ETF", "BOND", "FX_FWD", "OPTION"])
ASSET_MIX = np.array([0.55, 0.2, 0.12, 0.05, 0.08])
FIX_SECURITY_TYPE = np.array(["CS", "CS", "CORP", "FXFWD", "OPT"])
ATLAS_SEC_TYPE = np.array(["EQ", "ETF", "BD", "FXF", "OP"])
MERIDIAN_PRODUCT = np.array(["Equity", "ETF", "Bond", "FX Forward", "Option"])
LOT = np.array([1, 1, 1000, 1000, 1])  # quantity granularity per asset class
TICK_DECIMALS = np.array([2, 2, 3, 5, 2])
EXEC_BROKERS = np.array(["BRKA", "BRKB", "BRKC"])
EXEC_BROKER_MIX = np.array([0.45, 0.35, 0.2])
FIX_VERSION = {"BRKA": "FIX.4.4", "BRKB": "FIX.4.4", "BRKC": "FIX.4.2"}
PRIME_BROKERS = np.array(["atlas", "meridian"])
NEW_YORK = ZoneInfo("America/New_York")
FX_PAIRS = {  # pair: (forward rate level, USD value of one unit of base currency)
    "EURUSD": (1.085, 1.085), "GBPUSD": (1.27, 1.27), "USDJPY": (151.2, 1.0), "AUDUSD": (0.66, 0.66),
    "USDCAD": (1.365, 1.0), "USDCHF": (0.885, 1.0), "EURGBP": (0.855, 1.085), "NZDUSD": (0.6, 0.6),
}
SOH = "\x01"

CURRENCIES = ["USD", "EUR", "JPY", "CAD", "CHF", "GBP"]
_S_CCY = pl.Series(CURRENCIES)
_S_ASSET = pl.Series(ASSET_CLASSES)
_S_FIX_TYPE = pl.Series(FIX_SECURITY_TYPE)
_S_ATLAS_TYPE = pl.Series(ATLAS_SEC_TYPE)
_S_MERIDIAN = pl.Series(MERIDIAN_PRODUCT)
_S_EXEC = pl.Series(EXEC_BROKERS)
_S_PRIME = pl.Series(PRIME_BROKERS)
_S_BLOCK = pl.Series(["BLOCK-ATLAS", "BLOCK-MERIDIAN"])
_S_SIDE = pl.Series(["BUY", "SELL"])
_S_BS = pl.Series(["B", "S"])

BOOK_COLUMNS = [
    "trade_id", "order_id", "trade_date", "trade_time", "account_number", "instrument_id", "asset_class",
    "side", "quantity", "price", "currency", "settle_date", "executing_broker", "prime_broker",
    "commission", "fees",
]
ATLAS_COLUMNS = [
    "Client Ref", "Trade Dt", "Settle Dt", "Acct", "Security ID", "Sec Type", "B/S", "Qty", "Price", "Ccy",
    "Gross Amt", "Comm", "Fees", "Exec Broker",
]
MERIDIAN_COLUMNS = [
    "ref", "trade_date", "value_date", "account", "instrument", "product", "direction", "nominal", "px",
    "currency", "commission", "charges", "broker",
]


# --- formatting helpers -------------------------------------------------------------------------


def fixed(values: np.ndarray, decimals: int = 2) -> pl.Series:
    """Numbers as fixed-decimal text ('1234.50'), via polars' Decimal (no float repr surprises)."""
    rounded = np.round(np.asarray(values, dtype=np.float64), decimals) + 0.0
    return pl.Series(rounded).cast(pl.Decimal(38, decimals)).cast(pl.String)


def plain(values: np.ndarray, decimals: int) -> pl.Series:
    """Shortest text of a number rounded to ``decimals`` ('101.23', '0.98125')."""
    text = pl.Series(np.round(np.asarray(values, dtype=np.float64), decimals) + 0.0).cast(pl.String)
    return text.str.replace(r"\.0$", "")


def day_text(days: np.ndarray, fmt: str) -> pl.Series:
    """Dates as text; formats each distinct date once (a chunk has a handful of dates)."""
    unique, inverse = np.unique(np.asarray(days, dtype="datetime64[D]"), return_inverse=True)
    return pl.Series(unique).dt.strftime(fmt).gather(inverse.ravel())


# --- instruments --------------------------------------------------------------------------------


@dataclass
class Universe:
    instrument_id: np.ndarray
    asset: np.ndarray  # index into ASSET_CLASSES
    currency: np.ndarray
    price: np.ndarray  # (n, days) reference price per business day
    low: np.ndarray
    high: np.ndarray
    usd_per_unit: np.ndarray  # USD value of one quantity unit per price unit (for sizing)
    settle: np.ndarray  # datetime64[D] for FX forwards (NaT otherwise)
    by_asset: list[np.ndarray]
    instrument_s: pl.Series = None
    currency_code: np.ndarray = None

    def __post_init__(self) -> None:
        self.instrument_s = pl.Series(self.instrument_id)
        self.currency_code = np.searchsorted(np.array(CURRENCIES), self.currency, sorter=np.argsort(CURRENCIES))
        self.currency_code = np.argsort(CURRENCIES)[self.currency_code]


def _letters(codes: np.ndarray, width: int) -> np.ndarray:
    out = np.empty((len(codes), width), dtype=np.uint8)
    value = codes.copy()
    for pos in range(width - 1, -1, -1):
        out[:, pos] = ord("A") + value % 26
        value //= 26
    return out.view(f"S{width}").ravel().astype(str)


def build_universe(seed: int, days: list[date]) -> Universe:
    r = rng(seed, STREAM_INSTRUMENTS)
    n_eq, n_etf, n_bond, n_opt = 1500, 250, 800, 300
    tickers = _letters(r.permutation(26**4)[: n_eq + n_etf], 4)
    eq_px = np.exp(r.normal(np.log(60), 0.9, n_eq + n_etf)).clip(3, 900)
    bond_ids = np.char.add(np.char.add(np.char.zfill(r.integers(0, 10**6, n_bond).astype(str), 6),
                                       _letters(r.integers(0, 26**2, n_bond), 2)),
                           r.integers(0, 10, n_bond).astype(str))
    bond_px = r.normal(97.5, 5.0, n_bond).clip(70, 115)
    bond_ccy = np.where(r.random(n_bond) < 0.85, "USD", "EUR")
    # FX forwards: every pair at four value dates after as-of
    as_of = np.datetime64(days[-1], "D")
    tenors = add_business_days(np.array([as_of + 30, as_of + 61, as_of + 92, as_of + 182]), 0)
    pairs = list(FX_PAIRS)
    fx_pair = np.repeat(np.array(pairs), len(tenors))
    fx_settle = np.tile(tenors, len(pairs))
    fx_ids = np.char.add(np.char.add(fx_pair, "-"), day_text(fx_settle, "%Y%m%d").to_numpy().astype(str))
    fx_px = np.array([FX_PAIRS[p][0] for p in fx_pair]) * (1 + r.normal(0, 0.002, len(fx_pair)))
    fx_usd = np.array([FX_PAIRS[p][1] for p in fx_pair])
    fx_ccy = np.array([p[3:] for p in fx_pair])
    # listed options on the first equities: OCC symbol = root padded to 6, YYMMDD, C/P, strike x 1000
    under = r.integers(0, n_eq, n_opt)
    expiries = np.array(["2026-11-20", "2026-12-18", "2027-01-15"], dtype="datetime64[D]")
    expiry = expiries[r.integers(0, 3, n_opt)]
    call = r.random(n_opt) < 0.55
    strike = np.round(eq_px[under] * r.uniform(0.85, 1.15, n_opt) * 2) / 2
    occ = pl.DataFrame({"root": tickers[under], "exp": day_text(expiry, "%y%m%d"),
                        "cp": np.where(call, "C", "P"), "k": (strike * 1000).astype(np.int64)}).select(
        pl.concat_str([pl.col("root").str.pad_end(6), pl.col("exp"), pl.col("cp"),
                       pl.col("k").cast(pl.String).str.zfill(8)])).to_series().to_numpy().astype(str)
    opt_px = np.maximum(0.05, np.abs(eq_px[under] - strike) * 0.4 + eq_px[under] * r.uniform(0.01, 0.06, n_opt))

    ids = np.concatenate([tickers, bond_ids, fx_ids, occ])
    asset = np.concatenate([np.zeros(n_eq, int), np.ones(n_etf, int), np.full(n_bond, 2),
                            np.full(len(fx_ids), 3), np.full(n_opt, 4)])
    px0 = np.concatenate([eq_px, bond_px, fx_px, opt_px])
    ccy = np.concatenate([np.full(n_eq + n_etf, "USD"), bond_ccy, fx_ccy, np.full(n_opt, "USD")])
    vol = np.array([0.02, 0.012, 0.004, 0.004, 0.06])[asset] * np.exp(r.normal(0, 0.3, len(ids)))
    steps = np.exp(vol[:, None] * r.standard_normal((len(ids), len(days))))
    price = px0[:, None] * np.cumprod(steps, axis=1)
    spread_low = np.abs(r.normal(0, 1, price.shape)) * vol[:, None] * 0.7 + 0.001
    spread_high = np.abs(r.normal(0, 1, price.shape)) * vol[:, None] * 0.7 + 0.001
    # USD value of one quantity unit per unit of price: bonds are % of par, options x100,
    # FX forwards are base notional (its USD value is the base currency's USD rate / the price)
    usd = np.where(asset == 2, 0.01, 1.0) * np.where(asset == 4, 100.0, 1.0)
    usd[asset == 3] = fx_usd / fx_px
    settle = np.full(len(ids), np.datetime64("NaT"), dtype="datetime64[D]")
    settle[asset == 3] = fx_settle
    return Universe(
        instrument_id=ids, asset=asset, currency=ccy, price=price, low=price * (1 - spread_low),
        high=price * (1 + spread_high), usd_per_unit=usd, settle=settle,
        by_asset=[np.flatnonzero(asset == k) for k in range(len(ASSET_CLASSES))],
    )


# --- accounts -----------------------------------------------------------------------------------


@dataclass
class TradingAccounts:
    """What trading needs to know about every brokerage account."""

    number: np.ndarray
    prime: np.ndarray  # 0 atlas, 1 meridian
    is_open: np.ndarray
    habit_usd: np.ndarray  # the account's typical trade size
    number_s: pl.Series = None

    def __post_init__(self) -> None:
        self.number_s = pl.Series(self.number)

    def pools(self):
        """Cumulative sampling weights of open / closed accounts per prime broker."""
        out = {}
        for pb in (0, 1):
            for state in (True, False):
                idx = np.flatnonzero((self.prime == pb) & (self.is_open == state))
                weight = np.sqrt(np.maximum(self.habit_usd[idx], 1.0))
                cdf = np.cumsum(weight)
                out[pb, state] = (idx, cdf / cdf[-1] if len(cdf) else cdf)
        return out


# --- one chunk ----------------------------------------------------------------------------------


@dataclass
class ChunkOutput:
    book: pl.DataFrame
    atlas: pl.DataFrame
    meridian: pl.DataFrame
    fix: dict[str, pl.DataFrame]  # broker -> frame with columns sort_key, body (without 8/9/34/10)
    breaks: pl.DataFrame
    anomalies: pl.DataFrame


def _ids(prefix: str, seq0: int, n: int) -> pl.Series:
    return pl.select(pl.concat_str([pl.lit(prefix), (pl.int_range(seq0 + 1, seq0 + n + 1)).cast(pl.String).str.zfill(8)])
                     ).to_series()


def _pick(r, candidates: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(candidates))
    return np.sort(r.choice(candidates, k, replace=False)) if k else np.array([], dtype=np.int64)


def generate_chunk(
    seed: int, day_index: int, chunk: int, n_chunks: int, business_date: date, n_alloc: int,
    order_seq0: int, trade_seq0: int, universe: Universe, accounts: TradingAccounts, pools: dict,
) -> tuple[ChunkOutput, int]:
    r = rng(seed, STREAM_TRADES, day_index * 10_000 + chunk)
    bd = np.datetime64(business_date, "D")
    ymd = business_date.strftime("%Y%m%d")

    # orders and their allocation counts (exactly n_alloc allocations in the chunk)
    per_order = np.minimum(1 + r.poisson(2.0, n_alloc), 12)
    cum = np.cumsum(per_order)
    n_orders = int(np.searchsorted(cum, n_alloc) + 1)
    per_order = per_order[:n_orders]
    per_order[-1] -= cum[n_orders - 1] - n_alloc
    order_of = np.repeat(np.arange(n_orders), per_order)
    first_alloc = np.r_[0, np.cumsum(per_order)[:-1]]

    asset = r.choice(len(ASSET_CLASSES), n_orders, p=ASSET_MIX)
    u = r.random(n_orders)
    sizes = np.array([len(g) for g in universe.by_asset])
    inst = np.empty(n_orders, dtype=np.int64)
    for k, group in enumerate(universe.by_asset):
        sel = asset == k
        # popularity skew: a few names trade a lot
        inst[sel] = group[np.minimum((u[sel] ** 2.5 * sizes[k]).astype(np.int64), sizes[k] - 1)]
    side = (r.random(n_orders) < 0.48).astype(np.int8)  # 0 buy, 1 sell
    exec_broker = r.choice(3, n_orders, p=EXEC_BROKER_MIX)
    prime = (r.random(n_orders) < 0.4).astype(np.int8)

    # order times: this chunk's slice of the 9:30-16:00 New York session, in UTC
    offset = NEW_YORK.utcoffset(datetime.combine(business_date, time(12)))
    session_open = np.datetime64(datetime.combine(business_date, time(9, 30)) - offset, "ms")
    slice_ms = 390 * 60_000 / n_chunks
    t0 = session_open + (chunk * slice_ms + np.sort(r.random(n_orders)) * slice_ms).astype(np.int64).astype(
        "timedelta64[ms]")
    late = _pick(r, np.arange(n_orders), max(1, int(round(TIMEZONE_RATE * n_orders))))
    evening = np.datetime64(datetime.combine(business_date, time(20, 5)) - offset, "ms")
    t0[late] = evening + (r.random(len(late)) * 3.4 * 3_600_000).astype(np.int64).astype("timedelta64[ms]")

    # anomalies chosen up front so sizes and prices stay consistent on every side
    price_outlier_orders = _pick(r, np.arange(n_orders), max(1, int(round(PRICE_OUTLIER_RATE * n_orders))))
    is_late = np.zeros(n_orders, bool)
    is_late[late] = True

    # allocations
    alloc_prime = prime[order_of]
    acct = np.empty(n_alloc, dtype=np.int64)
    ua = r.random(n_alloc)
    for pb in (0, 1):
        sel = alloc_prime == pb
        idx, cdf = pools[pb, True]
        acct[sel] = idx[np.minimum(np.searchsorted(cdf, ua[sel]), len(idx) - 1)]
    special = np.zeros(n_alloc, bool)
    special[np.isin(order_of, price_outlier_orders)] = True
    special[np.isin(order_of, late)] = True
    closed_allocs = _pick(r, np.flatnonzero(~special), max(1, int(round(CLOSED_ACCOUNT_RATE * n_alloc))))
    for i in closed_allocs:  # a handful per chunk
        idx, cdf = pools[int(alloc_prime[i]), False]
        if len(idx):
            acct[i] = idx[min(int(np.searchsorted(cdf, r.random())), len(idx) - 1)]
    special[closed_allocs] = True
    size_allocs = _pick(r, np.flatnonzero(~special), max(1, int(round(SIZE_OUTLIER_RATE * n_alloc))))
    special[size_allocs] = True

    a_inst = inst[order_of]
    a_asset = asset[order_of]
    ref_px = universe.price[a_inst, day_index]
    notional = accounts.habit_usd[acct] * r.lognormal(0.0, 0.5, n_alloc)
    notional[size_allocs] *= r.uniform(25, 60, len(size_allocs))
    notional = np.where(a_asset == 4, notional * 0.08, notional)
    lot = LOT[a_asset]
    units = np.maximum(1, np.round(notional / (ref_px * universe.usd_per_unit[a_inst]) / lot)).astype(np.int64)
    qty = units * lot
    order_qty = np.bincount(order_of, weights=qty, minlength=n_orders).astype(np.int64)

    # fills: 1-4 per order, quantities in lots summing to the order, prices inside the day's range
    order_units = order_qty // LOT[asset]
    n_fill = np.minimum(r.choice(np.arange(1, 5), n_orders, p=[0.55, 0.25, 0.12, 0.08]), order_units)
    fill_order = np.repeat(np.arange(n_orders), n_fill)
    nf = len(fill_order)
    fill_first = np.r_[0, np.cumsum(n_fill)[:-1]]
    fill_rank = np.arange(nf) - fill_first[fill_order]
    w = r.random(nf) + 0.2
    wsum = np.bincount(fill_order, weights=w, minlength=n_orders)
    spare = order_units - n_fill
    f_units = 1 + np.floor(spare[fill_order] * w / wsum[fill_order]).astype(np.int64)
    is_last = fill_rank == n_fill[fill_order] - 1
    used = np.bincount(fill_order, weights=np.where(is_last, 0, f_units), minlength=n_orders).astype(np.int64)
    f_units = np.where(is_last, order_units[fill_order] - used[fill_order], f_units)
    f_qty = f_units * LOT[asset][fill_order]
    f_inst = inst[fill_order]
    lo = universe.low[f_inst, day_index]
    hi = universe.high[f_inst, day_index]
    f_px = lo + (hi - lo) * r.random(nf)
    outlier = np.isin(fill_order, price_outlier_orders)
    f_px[outlier] = (universe.price[f_inst[outlier], day_index]
                     * np.where(r.random(outlier.sum()) < 0.5, 0.55, 1.6) * r.uniform(0.97, 1.03, outlier.sum()))
    dec = TICK_DECIMALS[asset][fill_order]
    f_px = np.round(f_px * 10.0**dec) / 10.0**dec
    f_px = np.maximum(f_px, 10.0 ** -dec)
    notional_fill = f_qty * f_px
    cum_qty = np.cumsum(f_qty) - np.repeat(np.cumsum(f_qty)[fill_first] - f_qty[fill_first], n_fill)
    cum_notional = np.cumsum(notional_fill) - np.repeat(np.cumsum(notional_fill)[fill_first] - notional_fill[fill_first], n_fill)
    f_avg = cum_notional / cum_qty
    gaps = r.exponential(20_000, nf).astype(np.int64)
    f_time = t0[fill_order] + (np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[fill_first], n_fill)
                               + gaps[fill_first][fill_order]).astype("timedelta64[ms]")
    order_avg = np.round(np.bincount(fill_order, weights=notional_fill, minlength=n_orders) / order_qty, 6)
    order_done = f_time[fill_first + n_fill - 1]

    # allocation economics
    price = order_avg[order_of]
    mult = np.where(a_asset == 2, 0.01, np.where(a_asset == 4, 100.0, 1.0))
    gross = np.round(qty * price * mult, 2)
    commission = np.select(
        [a_asset <= 1, a_asset == 2, a_asset == 4],
        [np.maximum(1.0, 0.005 * qty), 0.0005 * qty, 0.65 * qty], 0.0)
    commission = np.round(commission, 2)
    sells = side[order_of] == 1
    fees = np.where(sells & (a_asset != 2) & (a_asset != 3), np.ceil(gross * 0.0000278 * 100) / 100, 0.0)
    settle = np.where(a_asset == 3, universe.settle[a_inst], add_business_days(np.full(n_alloc, bd), 1))
    order_ids = _ids(f"O{ymd}", order_seq0, n_orders)
    trade_ids = _ids(f"T{ymd}", trade_seq0, n_alloc)
    ccy = universe.currency_code[a_inst]

    # --- breaks and benign differences --------------------------------------------------------
    eligible = np.flatnonzero(~special)
    n_breaks = max(len(BREAK_TYPES), int(round(BREAK_RATE * n_alloc)))
    chosen = _pick(r, eligible, n_breaks + max(1, int(round(ROUNDING_RATE * n_alloc))))
    chosen = r.permutation(chosen)
    break_rows, rounding_rows = chosen[:n_breaks], chosen[n_breaks:]
    extra = r.choice(len(BREAK_TYPES), max(0, len(break_rows) - len(BREAK_TYPES)), p=BREAK_WEIGHTS / BREAK_WEIGHTS.sum())
    btype = np.r_[np.arange(len(BREAK_TYPES)), extra][: len(break_rows)]

    c_qty = qty.copy()
    c_price = price.copy()
    c_side = side[order_of].copy()
    c_settle = settle.copy()
    c_acct = acct.copy()
    c_comm = commission.copy()
    c_ccy = ccy.copy()
    keep_book = np.ones(n_alloc, bool)
    keep_confirm = np.ones(n_alloc, bool)
    dup_confirm = np.zeros(n_alloc, bool)
    drop_fix_order = np.zeros(n_orders, bool)
    detail = np.full(len(break_rows), None, dtype=object)

    def rows_of(name: str) -> tuple[np.ndarray, np.ndarray]:
        pos = np.flatnonzero(btype == BREAK_TYPES.index(name))
        return pos, break_rows[pos]

    pos, i = rows_of("missing_internal")
    keep_book[i] = False
    pos, i = rows_of("missing_confirm")
    keep_confirm[i] = False
    pos, i = rows_of("missing_broker")
    drop_fix_order[order_of[i]] = True
    pos, i = rows_of("quantity")
    delta = np.maximum(lot[i], np.round(qty[i] * r.uniform(0.01, 0.2, len(i)) / lot[i]) * lot[i])
    c_qty[i] = np.where((r.random(len(i)) < 0.5) & (qty[i] > delta), qty[i] - delta, qty[i] + delta).astype(np.int64)
    detail[pos] = [f"quantity {a} vs {b}" for a, b in zip(qty[i], c_qty[i], strict=True)]
    pos, i = rows_of("price")
    move = np.maximum(price[i] * r.uniform(0.002, 0.03, len(i)), 0.001)
    c_price[i] = np.round(price[i] + np.where(r.random(len(i)) < 0.5, -move, move), 6)
    detail[pos] = [f"price {a} vs {b}" for a, b in zip(price[i], c_price[i], strict=True)]
    pos, i = rows_of("side")
    c_side[i] = 1 - c_side[i]
    pos, i = rows_of("settlement_date")
    c_settle[i] = add_business_days(settle[i], r.choice(np.array([-1, 1, 2]), len(i)))
    pos, i = rows_of("account")
    for j in i:  # a handful per chunk
        idx, cdf = pools[int(alloc_prime[j]), True]
        other = idx[min(int(np.searchsorted(cdf, r.random())), len(idx) - 1)]
        c_acct[j] = other if other != acct[j] else (idx[0] if idx[0] != acct[j] else idx[-1])
    detail[pos] = [f"account {accounts.number[a]} vs {accounts.number[b]}" for a, b in zip(acct[i], c_acct[i], strict=True)]
    pos, i = rows_of("commission")
    c_comm[i] = np.round(commission[i] + r.uniform(2.0, 60.0, len(i)), 2)
    pos, i = rows_of("currency")
    usd, eur = CURRENCIES.index("USD"), CURRENCIES.index("EUR")
    c_ccy[i] = np.where(ccy[i] == usd, eur, usd)
    pos, i = rows_of("duplicate")
    dup_confirm[i] = True

    # benign: the confirm prints 4 decimals where the book has 6
    rounded = np.round(price[rounding_rows], 4)
    differs = rounded != price[rounding_rows]
    rounding_rows = rounding_rows[differs]
    c_price[rounding_rows] = rounded[differs]

    exec_of_alloc = exec_broker[order_of]
    break_kind = np.array(BREAK_TYPES)[btype]
    order_level = break_kind == "missing_broker"
    late_allocs = np.flatnonzero(np.isin(order_of, late))
    split_orders = np.flatnonzero(n_fill > 1)
    truth = pl.concat([
        pl.DataFrame({
            "trade_id": pl.Series(np.where(order_level, None, trade_ids.gather(break_rows).to_numpy()), dtype=pl.String),
            "order_id": order_ids.gather(order_of[break_rows]),
            "broker": pl.Series(np.where(order_level, EXEC_BROKERS[exec_of_alloc[break_rows]],
                                         PRIME_BROKERS[alloc_prime[break_rows]]), dtype=pl.String),
            "kind": pl.Series(["break"] * len(break_rows), dtype=pl.String),
            "break_type": pl.Series(break_kind, dtype=pl.String),
            "detail": pl.Series(detail.tolist(), dtype=pl.String),
        }),
        pl.DataFrame({
            "trade_id": trade_ids.gather(rounding_rows), "order_id": order_ids.gather(order_of[rounding_rows]),
            "broker": _S_PRIME.gather(alloc_prime[rounding_rows]),
            "kind": pl.Series(["benign"] * len(rounding_rows), dtype=pl.String),
            "break_type": pl.Series(["rounding"] * len(rounding_rows), dtype=pl.String),
            "detail": pl.Series([f"price {a} vs {b}" for a, b in zip(price[rounding_rows], c_price[rounding_rows], strict=True)],
                                dtype=pl.String),
        }),
        pl.DataFrame({
            "trade_id": pl.Series([None] * len(split_orders), dtype=pl.String),
            "order_id": order_ids.gather(split_orders), "broker": _S_EXEC.gather(exec_broker[split_orders]),
        }).with_columns(pl.lit("benign").alias("kind"), pl.lit("split_fill").alias("break_type"),
                        (pl.Series(n_fill[split_orders]).cast(pl.String) + " fills").alias("detail")),
        pl.DataFrame({
            "trade_id": trade_ids.gather(late_allocs), "order_id": order_ids.gather(order_of[late_allocs]),
            "broker": _S_PRIME.gather(alloc_prime[late_allocs]),
        }).with_columns(pl.lit("benign").alias("kind"), pl.lit("timezone").alias("break_type"),
                        pl.lit("executed after 20:00 New York: next UTC day").alias("detail")),
    ], how="vertical_relaxed").with_columns(pl.lit(business_date).alias("business_date"))

    po_allocs = np.flatnonzero(np.isin(order_of, price_outlier_orders))
    an_rows = np.r_[po_allocs, size_allocs, closed_allocs]
    anomalies = pl.DataFrame({
        "trade_id": trade_ids.gather(an_rows), "order_id": order_ids.gather(order_of[an_rows]),
        "account_number": accounts.number_s.gather(acct[an_rows]),
        "anomaly_type": pl.Series(np.r_[np.full(len(po_allocs), "price_outlier"), np.full(len(size_allocs), "size_outlier"),
                                        np.full(len(closed_allocs), "closed_account")], dtype=pl.String),
    }).with_columns(pl.lit(business_date).alias("business_date"), pl.lit(None, dtype=pl.String).alias("detail"))

    # --- files --------------------------------------------------------------------------------
    trade_time = order_done[order_of]
    bd_text = day_text(np.array([bd]), "%Y-%m-%d")[0]
    book = pl.DataFrame({
        "trade_id": trade_ids, "order_id": order_ids.gather(order_of),
        "trade_date": pl.Series([bd_text]).gather(np.zeros(n_alloc, np.int64)),
        "trade_time": pl.Series(trade_time).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        "account_number": accounts.number_s.gather(acct),
        "instrument_id": universe.instrument_s.gather(a_inst), "asset_class": _S_ASSET.gather(a_asset),
        "side": _S_SIDE.gather(side[order_of]), "quantity": qty, "price": plain(price, 6),
        "currency": _S_CCY.gather(ccy), "settle_date": day_text(settle, "%Y-%m-%d"),
        "executing_broker": _S_EXEC.gather(exec_of_alloc), "prime_broker": _S_PRIME.gather(alloc_prime),
        "commission": fixed(commission), "fees": fixed(fees),
    }).filter(pl.Series(keep_book))

    cr = np.sort(np.r_[np.flatnonzero(keep_confirm), np.flatnonzero(dup_confirm & keep_confirm)])
    c_gross = np.round(c_qty[cr] * c_price[cr] * mult[cr], 2)
    atlas_rows = pl.Series(alloc_prime[cr] == 0)
    atlas = pl.DataFrame({
        "Client Ref": trade_ids.gather(cr), "Trade Dt": day_text(np.full(len(cr), bd), "%m/%d/%Y"),
        "Settle Dt": day_text(c_settle[cr], "%m/%d/%Y"), "Acct": accounts.number_s.gather(c_acct[cr]),
        "Security ID": universe.instrument_s.gather(a_inst[cr]), "Sec Type": _S_ATLAS_TYPE.gather(a_asset[cr]),
        "B/S": _S_BS.gather(c_side[cr]), "Qty": c_qty[cr], "Price": plain(c_price[cr], 6),
        "Ccy": _S_CCY.gather(c_ccy[cr]), "Gross Amt": fixed(c_gross), "Comm": fixed(c_comm[cr]),
        "Fees": fixed(fees[cr]), "Exec Broker": _S_EXEC.gather(exec_of_alloc[cr]),
    }).filter(atlas_rows)
    m_px = np.where(a_asset[cr] == 2, c_price[cr] / 100.0, np.where(a_asset[cr] == 4, c_price[cr] * 100.0, c_price[cr]))
    meridian = pl.DataFrame({
        "ref": trade_ids.gather(cr), "trade_date": day_text(np.full(len(cr), bd), "%d.%m.%Y"),
        "value_date": day_text(c_settle[cr], "%d.%m.%Y"), "account": accounts.number_s.gather(c_acct[cr]),
        "instrument": universe.instrument_s.gather(a_inst[cr]), "product": _S_MERIDIAN.gather(a_asset[cr]),
        "direction": _S_SIDE.gather(c_side[cr]), "nominal": c_qty[cr], "px": plain(m_px, 8),
        "currency": _S_CCY.gather(c_ccy[cr]), "commission": fixed(c_comm[cr]), "charges": fixed(fees[cr]),
        "broker": _S_EXEC.gather(exec_of_alloc[cr]),
    }).filter(~atlas_rows)

    # FIX bodies (everything after 34= up to the field before 10=), per executing broker
    keep_fill = ~drop_fix_order[fill_order]
    fo = fill_order
    order_commission = np.bincount(order_of, weights=commission, minlength=n_orders)
    f_comm = np.round(order_commission[fo] * f_qty / order_qty[fo], 2)
    send = f_time + r.integers(5, 900, n_orders)[fo].astype("timedelta64[ms]")  # per order: fills stay in order
    fills = pl.DataFrame({
        "broker": exec_broker[fo], "send": send, "sending": pl.Series(send).dt.strftime("%Y%m%d-%H:%M:%S%.3f"),
        "clordid": order_ids.gather(fo), "rank": fill_rank + 1, "last": is_last,
        "account": _S_BLOCK.gather(prime[fo]), "symbol": universe.instrument_s.gather(f_inst),
        "sectype": _S_FIX_TYPE.gather(asset[fo]), "side": side[fo] + 1, "orderqty": order_qty[fo], "lastqty": f_qty,
        "lastpx": plain(f_px, 6), "leaves": order_qty[fo] - cum_qty, "cumqty": cum_qty,
        "avgpx": plain(f_avg, 6), "currency": _S_CCY.gather(universe.currency_code[f_inst]),
        "transact": pl.Series(f_time).dt.strftime("%Y%m%d-%H:%M:%S%.3f"),
        "settldate": day_text(settle[first_alloc[fo]], "%Y%m%d"), "commission": fixed(f_comm),
    }).filter(pl.Series(keep_fill))
    fix = {}
    for b, broker in enumerate(EXEC_BROKERS):
        part = fills.filter(pl.col("broker") == b).sort("send", maintain_order=True)
        v44 = FIX_VERSION[broker] == "FIX.4.4"
        exec_type = (pl.lit("150=F") if v44
                     else pl.concat_str([pl.lit("20=0\x01150="), pl.when(pl.col("last")).then(pl.lit("2")).otherwise(pl.lit("1"))]))
        broker_order = pl.concat_str([pl.lit(broker + "-"), pl.col("clordid")])
        tail = pl.concat_str([
            pl.lit(SOH + "52="), pl.col("sending"), pl.lit(SOH + "37="), broker_order,
            pl.lit(SOH + "11="), pl.col("clordid"), pl.lit(SOH + "17="), broker_order, pl.lit("-"),
            pl.col("rank").cast(pl.String), pl.lit(SOH), exec_type, pl.lit(SOH + "39="),
            pl.when(pl.col("last")).then(pl.lit("2")).otherwise(pl.lit("1")), pl.lit(SOH + "1="), pl.col("account"),
            pl.lit(SOH + "55="), pl.col("symbol"), pl.lit(SOH + "167="), pl.col("sectype"), pl.lit(SOH + "54="),
            pl.col("side").cast(pl.String), pl.lit(SOH + "38="), pl.col("orderqty").cast(pl.String), pl.lit(SOH + "32="),
            pl.col("lastqty").cast(pl.String), pl.lit(SOH + "31="), pl.col("lastpx"), pl.lit(SOH + "151="),
            pl.col("leaves").cast(pl.String), pl.lit(SOH + "14="), pl.col("cumqty").cast(pl.String),
            pl.lit(SOH + "6="), pl.col("avgpx"), pl.lit(SOH + "15="), pl.col("currency"), pl.lit(SOH + "60="),
            pl.col("transact"), pl.lit(SOH + "75=" + ymd + SOH + "64="),
            pl.col("settldate"), pl.lit(SOH + "12="), pl.col("commission"), pl.lit(SOH + "13=3" + SOH),
        ])
        fix[broker] = part.select(tail.alias("tail"))
    output = ChunkOutput(book=book, atlas=atlas, meridian=meridian, fix=fix, breaks=truth, anomalies=anomalies)
    return output, n_orders


def fix_messages(broker: str, tails: pl.Series, seq0: int) -> pl.Series:
    """Complete FIX lines: header with BodyLength, MsgSeqNum from seq0+1, trailer with CheckSum."""
    version = FIX_VERSION[broker]
    n = len(tails)
    seq = pl.Series(np.arange(seq0 + 1, seq0 + n + 1)).cast(pl.String)
    frame = pl.DataFrame({"seq": seq, "tail": tails})
    frame = frame.with_columns(
        pl.concat_str([pl.lit("35=8" + SOH + "49=" + broker + SOH + "56=NORTHSTAR" + SOH + "34="),
                       pl.col("seq"), pl.col("tail")]).alias("body"))
    frame = frame.with_columns(
        pl.concat_str([pl.lit("8=" + version + SOH + "9="), pl.col("body").str.len_bytes().cast(pl.String),
                       pl.lit(SOH), pl.col("body")]).alias("msg"))
    return with_checksum(frame["msg"])


def with_checksum(messages: pl.Series) -> pl.Series:
    """Append ``10=NNN<SOH>``: sum of every byte before it, mod 256 (vectorised over the arrow buffer)."""
    if len(messages) == 0:
        return messages
    arr = messages.to_arrow()
    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    arr = arr.cast("large_string")
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8)
    sums = np.add.reduceat(data, offsets[:-1], dtype=np.uint64) if offsets[-1] > offsets[0] else np.zeros(len(arr))
    checksum = pl.Series((sums % 256).astype(np.int64)).cast(pl.String).str.zfill(3)
    return pl.DataFrame({"m": messages, "c": checksum}).select(
        pl.concat_str([pl.col("m"), pl.lit("10="), pl.col("c"), pl.lit(SOH)])).to_series()


# --- the day files ------------------------------------------------------------------------------


class TradingWriter:
    """Appends each chunk's rows to the day's trade book, confirm and FIX files."""

    def __init__(self, drop: Path) -> None:
        self.drop = drop
        for sub in ("oms", "fix", "prime/atlas", "prime/meridian"):
            (drop / sub).mkdir(parents=True, exist_ok=True)
        self.handles: dict[str, object] = {}
        self.fix_seq: dict[str, int] = {}
        self.rows: dict[str, int] = {}

    def _append_csv(self, path: Path, frame: pl.DataFrame, separator: str = ",") -> None:
        key = str(path)
        first = key not in self.handles
        if first:
            self.handles[key] = path.open("wb")
            self.rows[key] = 0
        frame.write_csv(self.handles[key], include_header=first, separator=separator)
        self.rows[key] += frame.height

    def write(self, business_date: date, out: ChunkOutput) -> None:
        ymd = business_date.strftime("%Y%m%d")
        self._append_csv(self.drop / "oms" / f"trade_book_{ymd}.csv", out.book)
        self._append_csv(self.drop / "prime" / "atlas" / f"ATLAS_CONF_{ymd}.csv", out.atlas)
        self._append_csv(self.drop / "prime" / "meridian" / f"meridian_confirms_{business_date.isoformat()}.csv",
                         out.meridian, separator=";")
        for broker, frame in out.fix.items():
            path = self.drop / "fix" / f"{broker}_{ymd}.fix"
            key = str(path)
            if key not in self.handles:
                self.handles[key] = path.open("wb")
                self.fix_seq[key] = 0
                self.rows[key] = 0
            lines = fix_messages(broker, frame["tail"], self.fix_seq[key])
            self.fix_seq[key] += len(lines)
            self.rows[key] += len(lines)
            if len(lines):
                pl.DataFrame({"line": lines}).write_csv(self.handles[key], include_header=False, quote_style="never")

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
