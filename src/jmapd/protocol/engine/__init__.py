"""The generic engine: /get /changes /set /copy /query /queryChanges, written once for every
data type declared with `DataType` and registered with `register_type`."""

from .datatype import ABSENT, REQUIRED, DataType, Filter, Hooks, Property, register_type

__all__ = ["ABSENT", "REQUIRED", "DataType", "Filter", "Hooks", "Property", "register_type"]
