"""The run engine: reference set -> cases -> shards -> decoder x seeds -> metrics -> store."""
