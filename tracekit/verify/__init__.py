"""Verification: is a trace's final answer right? Math (math-verify), code (sandboxed tests),
exact / choice / regex string checks, a majority-vote pseudo-reference, and format flags.

Every verifier runs in a pool of killable worker processes (pool.py) so no input can hang a run.
"""

from tracekit.verify.base import Outcome
from tracekit.verify.runner import VerifyConfig, run_verify

__all__ = ["Outcome", "VerifyConfig", "run_verify"]
