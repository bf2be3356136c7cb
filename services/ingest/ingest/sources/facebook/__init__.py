"""Facebook: the Lead Ads webhook (signed), Graph API lead retrieval, Messenger messages."""
