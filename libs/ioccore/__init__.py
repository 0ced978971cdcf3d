"""Shared plumbing for the IOC services: settings, logging, Kafka, ClickHouse, contracts, local stack, CLI.

No business logic lives here, and nothing here imports a service.
"""
