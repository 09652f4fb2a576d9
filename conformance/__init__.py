"""Conformance harness: other people's BPMN files, loaded and run by govflow."""
