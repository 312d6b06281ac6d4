"""AWS access (SQS, DynamoDB, S3). boto3 is imported here lazily, never at module import."""
