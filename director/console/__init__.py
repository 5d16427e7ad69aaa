"""The Director's console server: command registry, parsing, ACLs and the command families."""
