"""The checks behind deploy/check, one module per concern.

workspace: what the code defines (binaries, ports, config keys, SWITCHYARD_* names);
rules: the Check record and the rules the Dockerfile, Compose and Kubernetes checks share;
dockerfile, compose, kubernetes: the checks of those files; run: all checks in order;
selftest: the deliberately broken copies that --self-test shows are caught.
"""
