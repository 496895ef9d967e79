"""The local session store (sqlite) in the state directory."""
