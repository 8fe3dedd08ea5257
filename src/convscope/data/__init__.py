"""convscope.data"""
