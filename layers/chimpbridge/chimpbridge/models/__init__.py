"""Request, response, domain and stored-item models (pydantic), one module per concern."""
