"""The only code that talks to the Hugging Face Hub.

Everything before the upload (the files, the card, the checks) is built and tested offline; this
module is the single network call, which tests replace (`upload_folder`). The token comes from
HF_TOKEN or the standard `hf auth login` cache and is passed straight to huggingface_hub: it is
never written to the store, the run log, a card or a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from tracekit.errors import TracekitError


def get_token() -> str | None:
    token = os.environ.get("HF_TOKEN")
    if token:
        return token
    try:
        from huggingface_hub import get_token as _hub_token

        return _hub_token()
    except Exception:  # no cache, unreadable cache: treated as "not logged in"
        return None


def upload_folder(folder: Path, repo_id: str, *, private: bool, token: str, message: str) -> str:
    """Create the dataset repo if needed and upload every file of `folder` in one commit.
    Returns the commit URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(
            folder_path=str(folder), repo_id=repo_id, repo_type="dataset", commit_message=message
        )
    except HfHubHTTPError as e:
        raise TracekitError(f"upload to {repo_id} failed: {str(e).splitlines()[0]}") from None
    except OSError as e:  # offline, DNS, refused connections
        raise TracekitError(f"cannot reach the Hugging Face Hub to upload {repo_id}: {e}") from None
    return str(getattr(info, "commit_url", info))
