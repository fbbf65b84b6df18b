"""`helm test` check: GET /v1/models answers with the served model, and refuses a missing key.

Runs with the python3 of the server image, standard library only.
"""

import json
import os
import sys
import urllib.error
import urllib.request

URL = os.environ["MODELS_URL"]
KEY_FILE = os.environ.get("API_KEY_FILE", "")
EXPECTED = [name for name in os.environ.get("EXPECTED_MODELS", "").split(",") if name]


def get(key):
    request = urllib.request.Request(URL)
    if key:
        request.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None


def main():
    key = ""
    if KEY_FILE:
        with open(KEY_FILE, encoding="utf-8") as keys:
            key = next((line.strip() for line in keys if line.strip()), "")
        status, _ = get("")
        if status not in (401, 403):
            sys.exit(f"FAIL: {URL} without an API key answered {status}, expected 401")
        print(f"ok: {URL} without an API key -> {status}")
    status, body = get(key)
    if status != 200:
        sys.exit(f"FAIL: {URL} answered {status}")
    served = [model["id"] for model in body.get("data", [])]
    missing = [name for name in EXPECTED if name not in served]
    if not served or missing:
        sys.exit(f"FAIL: served models {served}, expected {EXPECTED or 'at least one'}")
    print(f"ok: {URL} -> 200, models {served}")


if __name__ == "__main__":
    main()
