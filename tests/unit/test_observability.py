import json

from chimpbridge.observability import logger, mask_emails
from tests.support.logs import last_line, log_buffer


def test_email_addresses_are_masked():
    assert mask_emails("jane.doe@example.com") == "j***@e***.com"
    assert mask_emails("to: a+b@mail.example.co.uk, x") == "to: a***@m***.uk, x"


def test_text_without_addresses_is_unchanged():
    assert mask_emails("status=pending list=a1b2c3d4e5 @home") == "status=pending list=a1b2c3d4e5 @home"


def test_log_lines_mask_addresses_in_messages_and_fields():
    # Given the logger's own formatter writing into a buffer
    with log_buffer() as buffer:
        # When a line carries an address in the message and in an extra field
        logger.info("signup for jane.doe@example.com", extra={"email": "jane.doe@example.com"})
    line = json.loads(last_line(buffer))
    # Then neither place holds the address
    assert line["message"] == "signup for j***@e***.com"
    assert line["email"] == "j***@e***.com"
