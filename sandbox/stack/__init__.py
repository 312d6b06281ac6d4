"""The docker-free local stack: ``template.yaml`` on loopback (docs/local-stack.md).

    python -m sandbox.stack dev                          # make dev
    python -m sandbox.stack invoke <LogicalId> <event>   # make invoke FN=... EVENT=...

Modules, in the order a request meets them: ``cfn_yaml`` and ``intrinsics`` read the template,
``template`` turns it into functions/routes/queues, ``resources`` creates what moto holds,
``services`` starts moto and the Mailchimp sandbox, ``workers`` and ``lambda_runtime`` run
functions in their own processes, ``api_server``/``apigw_events`` are API Gateway,
``sqs_source`` the SQS event source mappings, ``stack`` ties them together, and
``local_config`` holds every local value. ``pytest_plugin`` gives tests the running stack.
"""
