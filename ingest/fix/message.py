"""Encoding one FIX tag=value message with a correct BodyLength and CheckSum (tests, benchmarks, tools)."""

from __future__ import annotations

SOH = b"\x01"


def encode(begin_string: str, fields: list[tuple[int, str]], encoding: str = "utf-8") -> bytes:
    """``8=<begin_string>|9=<len>|<fields...>|10=<sum>|`` with the body starting at ``fields[0]`` (35=...)."""
    body = b"".join(f"{tag}={value}".encode(encoding) + SOH for tag, value in fields)
    head = f"8={begin_string}".encode() + SOH + f"9={len(body)}".encode() + SOH
    checksum = sum(head + body) % 256
    return head + body + f"10={checksum:03d}".encode() + SOH
