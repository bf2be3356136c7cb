"""Direct routing: per source and per site, leads go to the operators or to dispatch at once."""
