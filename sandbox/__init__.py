"""Local, docker-free stand-ins for what cannot run here: Mailchimp (Marketing and
Transactional) in ``sandbox.mailchimp`` and the local stack (API Gateway, SQS pollers,
moto) in ``sandbox.stack``. Not deployed."""
