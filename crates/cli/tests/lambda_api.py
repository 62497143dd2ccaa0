"""Drives Arcus's Lambda-compatible API with boto3 (run by e2e_lambda_api.rs).

Usage: lambda_api.py ENDPOINT APP KEY_ID SECRET. Exits non-zero on the first failed check.
"""
import base64
import json
import sys

import boto3
import botocore.exceptions
from botocore.config import Config

endpoint, app, key_id, secret = sys.argv[1:5]


def client(secret_key):
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="eu-west-3",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 1}),
    )


lam = client(secret)


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)
    print("ok:", what)


def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


# RequestResponse of a python3 handler; no Qualifier runs the draft.
r = lam.invoke(FunctionName="py", Payload=json.dumps({"n": 1}))
body = json.loads(r["Payload"].read())
check(r["StatusCode"] == 200 and body["event"] == {"n": 1}, "python RequestResponse")
check(r["ExecutedVersion"] == "$LATEST", "no Qualifier runs $LATEST")
check("FunctionError" not in r, "no function error")

# Qualifier: a version, an alias, and an ARN naming one.
r = lam.invoke(FunctionName="py", Qualifier="1", Payload=b"{}")
check(r["ExecutedVersion"] == "1", "Qualifier=1 runs version 1")
r = lam.invoke(FunctionName="py", Qualifier="live", Payload=b"{}")
check(r["ExecutedVersion"] == "1", "Qualifier=live runs the alias's version")
arn = "arn:aws:lambda:eu-west-3:%s:function:py:1" % app
r = lam.invoke(FunctionName=arn, Payload=b"{}")
check(r["ExecutedVersion"] == "1" and json.loads(r["Payload"].read())["event"] == {}, "ARN with qualifier")

# wasm: the event arrives as a POST / with the JSON body.
r = lam.invoke(FunctionName="echo", Payload=json.dumps({"w": 2}))
echoed = json.loads(r["Payload"].read())
check(echoed["method"] == "POST" and json.loads(echoed["body"]) == {"w": 2}, "wasm RequestResponse")

# LogType=Tail: base64 of the last 4 KB of the invocation's log lines.
r = lam.invoke(FunctionName="py", LogType="Tail", Payload=b"{}")
tail = base64.b64decode(r["LogResult"]).decode()
check("hello from python" in tail and "REPORT RequestId" in tail, "LogType=Tail: %r" % tail[-200:])
check(len(base64.b64decode(r["LogResult"])) <= 4096, "tail at most 4 KB")

# A function error is a 200 with X-Amz-Function-Error and the error document.
r = lam.invoke(FunctionName="pyfail", Payload=json.dumps({"x": "zz"}))
err = json.loads(r["Payload"].read())
check(r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled", "function error header")
check(err["errorType"] == "ValueError" and "bad input: zz" in err["errorMessage"], "error document")

# Event: 202, queued; DryRun: 204.
r = lam.invoke(FunctionName="py", InvocationType="Event", Payload=json.dumps({"async": True}))
check(r["StatusCode"] == 202, "Event answers 202")
r = lam.invoke(FunctionName="py", InvocationType="DryRun", Payload=b"{}")
check(r["StatusCode"] == 204, "DryRun answers 204")

# Errors keep Lambda's types.
check(error_code(lambda: lam.invoke(FunctionName="nope", Payload=b"{}")) == ("ResourceNotFoundException", 404), "unknown function")
check(error_code(lambda: lam.invoke(FunctionName="py", InvocationType="DryRun", Qualifier="9")) == ("ResourceNotFoundException", 404), "DryRun of a missing version")
other = "arn:aws:lambda:eu-west-3:other:function:secret-fn"
missing = "arn:aws:lambda:eu-west-3:other:function:does-not-exist"
check(error_code(lambda: lam.invoke(FunctionName=other)) == error_code(lambda: lam.invoke(FunctionName=missing)) == ("AccessDeniedException", 403), "another app's function, existing or not")
big = b'"' + b"x" * (6 * 1024 * 1024) + b'"'
check(error_code(lambda: lam.invoke(FunctionName="py", Payload=big))[0] == "RequestEntityTooLargeException", "payload over 6 MiB")
# A response over 6 MiB is the function's failure, as on Lambda: 200 with a function
# error of type Function.ResponseSizeTooLarge (`echo` answers with more than it is sent).
r = lam.invoke(FunctionName="echo", Payload=b'"' + b"x" * (6 * 1024 * 1024 - 64) + b'"')
doc = json.loads(r["Payload"].read())
check(r["StatusCode"] == 200 and r.get("FunctionError") == "Unhandled" and doc["errorType"] == "Function.ResponseSizeTooLarge", "response over 6 MiB")
check(error_code(lambda: client("x" * 40).invoke(FunctionName="py", Payload=b"{}")) == ("InvalidSignatureException", 403), "wrong secret refused")
bad_id = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="ARCAAAAAAAAAAAAAAAAA", aws_secret_access_key=secret)
check(error_code(lambda: bad_id.invoke(FunctionName="py", Payload=b"{}")) == ("UnrecognizedClientException", 403), "unknown key refused")
# Request-rate limits apply as on /fn: `limited` has 1 request/s and a burst of 2. A
# client that does not retry sees TooManyRequestsException (429, Retry-After); DryRun
# takes no token; Event calls are limited too; other functions are not.
once = boto3.client(
    "lambda",
    endpoint_url=endpoint,
    region_name="eu-west-3",
    aws_access_key_id=key_id,
    aws_secret_access_key=secret,
    config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
)


def first_refusal(call, n=10):
    for i in range(n):
        try:
            call()
        except botocore.exceptions.ClientError as e:
            return i, e
    return n, None


i, e = first_refusal(lambda: once.invoke(FunctionName="limited", Payload=b"{}"))
check(e is not None and i >= 2, "the burst of 2 is admitted, then refused (after %d)" % i)
meta = e.response["ResponseMetadata"]
check(e.response["Error"]["Code"] == "TooManyRequestsException" and meta["HTTPStatusCode"] == 429, "TooManyRequestsException 429")
check(meta["HTTPHeaders"].get("retry-after") == "1", "Retry-After: %r" % meta["HTTPHeaders"].get("retry-after"))
check("shop/limited" in e.response["Error"]["Message"], "message names the function: %r" % e.response["Error"]["Message"])
r = once.invoke(FunctionName="limited", InvocationType="DryRun", Payload=b"{}")
check(r["StatusCode"] == 204, "DryRun is not rate-limited")
i, e = first_refusal(lambda: once.invoke(FunctionName="limited", InvocationType="Event", Payload=b"{}"))
check(e is not None and e.response["Error"]["Code"] == "TooManyRequestsException", "Event calls are rate-limited")
r = once.invoke(FunctionName="echo", Payload=b"{}")
check(r["StatusCode"] == 200, "another function is not limited")
print("all checks passed")
