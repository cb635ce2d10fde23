"""The raw journal: matched requests, durable before they go on, translated afterwards.

format.py is a record's bytes, segments.py the files on disk and how they are read back,
writer.py the proxy's appender (group commit).
"""
