"""xapitap: watch learning platforms' analytics traffic and turn it into xAPI statements."""

__version__ = "0.1.0"
