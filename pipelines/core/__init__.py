"""What every stage shares: params, errors, atomic files, the results contract, provenance."""
