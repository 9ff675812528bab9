"""Client side of support conversations: a typed client, terminal rendering, the scripted demo."""
