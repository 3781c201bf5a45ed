"""Conformance suite for the Local Mesos emulator (devcluster.mesos)."""
