"""schemathesis hooks for the AWS tier only (`tests/it/api_contract.rs` loads them when
STOREFRONT_SCHEMATHESIS_UTF8_BODIES is set).

`cargo lambda watch` turns each HTTP request into an API Gateway event, whose `body` is a JSON string; a request
body that is not UTF-8 cannot be put there, and the watcher answers 500 itself without running the function.
API Gateway base64-encodes such a body instead (and the functions answer 400 `invalid_body`, as on the other
hosts). So on that tier only, request bodies that are not UTF-8 are not generated: an emulator limit, not an
exclusion of any operation.
"""
import schemathesis


@schemathesis.hook
def filter_body(ctx, body):
    if isinstance(body, (bytes, bytearray)):
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True
