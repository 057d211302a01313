"""Deploy builds to environments: a shared forwarder, one stack per environment.

The forwarder's code is published once per build as a Lambda version of one
shared function. Each environment (dev, staging, production) has its own
stack from ``system/template.yaml`` and an alias of that function, named
after the environment, that points at the version its build deployed.
"""
