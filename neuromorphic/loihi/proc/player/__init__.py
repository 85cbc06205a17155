"""A source that plays a data set through the Loihi path, one sample per schedule slot."""
