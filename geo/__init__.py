"""Geography: reference communes, geocoding, territory checks, nearest-doctor ranking.

Plain Python over shapely and numpy: nothing here knows Flask or the database.
"""
