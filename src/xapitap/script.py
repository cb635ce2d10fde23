"""The addon as a mitmproxy script of the installed package (what `xapitap run` loads)."""

from xapitap.addon import XapiTap

addons = [XapiTap()]
