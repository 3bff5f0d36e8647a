"""The data command lines (``python -m braintumor audit|download|synthetic``): the argument
parsing and printing only; the work is done by the library modules they call
(:mod:`braintumor.data.audit`, :mod:`braintumor.data.download`,
:mod:`braintumor.data.synthetic`), which take plain arguments and return data."""
