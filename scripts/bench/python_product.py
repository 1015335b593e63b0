"""The `product` function's read (`GET /products/{id}`) as a Python 3 Lambda function on boto3, for the Lambda
benchmark's comparison (scripts/bench-lambda.sh runs it with the AWS Lambda Python runtime interface client,
`awslambdaric` from PyPI). Same table layout and the same work as the Rust function: one strongly consistent
GetItem, the product document as JSON with its `ETag`, 404 for an unknown id. The client is built at init, as
the Rust function builds its own."""

import json
import os

import boto3

TABLE = os.environ["TABLE_NAME"]
DYNAMODB = boto3.client("dynamodb")
PREFIX = "/products/"


def answer(status, body, headers=None):
    return {"statusCode": status, "headers": {"content-type": "application/json", **(headers or {})}, "body": json.dumps(body)}


def handler(event, context):
    path = event.get("rawPath", "")
    product_id = path[len(PREFIX):] if path.startswith(PREFIX) else ""
    if not product_id or "/" in product_id:
        return answer(404, {"code": "not_found"})
    item = DYNAMODB.get_item(
        TableName=TABLE, Key={"pk": {"S": f"PRODUCT#{product_id}"}, "sk": {"S": "PRODUCT"}}, ConsistentRead=True
    ).get("Item")
    if item is None:
        return answer(404, {"code": "not_found"})
    version = item["version"]["N"]
    product = json.loads(item["data"]["S"])
    return answer(200, {**product, "version": int(version)}, {"etag": f'"{version}"'})
